/**
 * A model directory as `transformers` saves it: `config.json`, the weights
 * (`model.safetensors` or a sharded index), and optionally the tokenizer files and
 * `preprocessor_config.json`. {@linkcode openModelDir} validates `config.json` and opens the
 * checkpoint; the tokenizer and the image processor load on first use. Which model a
 * `model_type` is, is the backbone table's business (`src/models/backbones.ts`).
 *
 * @module
 */
import { join } from "node:path";
import { type Checkpoint, openCheckpoint } from "./sharded.ts";
import { isPlainObject, readJsonObject } from "./json.ts";
import { type HfTokenizer, loadTokenizer } from "./tokenizer.ts";
import { type ImageProcessor, loadImageProcessor } from "./image.ts";

/** The model's configuration file. */
export const CONFIG_FILE = "config.json";

/** An opened model directory. */
export interface ModelDir {
  /** The directory. */
  readonly dir: string;
  /** Path of its `config.json`, for error messages (e.g. with `ConfigFields`). */
  readonly configPath: string;
  /** The parsed `config.json`. */
  readonly config: Readonly<Record<string, unknown>>;
  /** The top-level `model_type`, e.g. `"llava"`. */
  readonly modelType: string;
  /** `text_config.model_type` of a composite model (`"opt"` in BLIP-2), if present. */
  readonly textModelType: string | undefined;
  /** The weights. */
  readonly checkpoint: Checkpoint;
  /** The tokenizer, loaded on the first call (see `loadTokenizer`). */
  tokenizer(): Promise<HfTokenizer>;
  /** The image processor, loaded on the first call (see `loadImageProcessor`). */
  imageProcessor(): Promise<ImageProcessor>;
  /** Closes the checkpoint. */
  close(): void;
}

/**
 * Opens model directory `dir`: reads `config.json` (a missing or malformed file, or a missing
 * or non-string `model_type`, is an error naming the file and the field) and opens its
 * checkpoint with `openCheckpoint`.
 *
 * @example
 * ```ts
 * import { openModelDir } from "./model_dir.ts";
 * import { writeSafetensors } from "./safetensors.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify({ model_type: "opt" }));
 * await writeSafetensors(`${dir}/model.safetensors`, {
 *   w: new Tensor("f32", [1], new Float32Array([1])),
 * });
 * const md = await openModelDir(dir);
 * if (md.modelType !== "opt" || !md.checkpoint.has("w")) throw new Error("open");
 * md.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function openModelDir(dir: string): Promise<ModelDir> {
  const configPath = join(dir, CONFIG_FILE);
  const config = await readJsonObject(configPath);
  const modelType = config.model_type;
  if (modelType === undefined || modelType === null) {
    throw new Error(`${configPath}: field 'model_type' is missing`);
  }
  if (typeof modelType !== "string" || modelType === "") {
    throw new Error(
      `${configPath}: field 'model_type' must be a non-empty string, got ${
        JSON.stringify(modelType)
      }`,
    );
  }
  let textModelType: string | undefined;
  if (config.text_config !== undefined && config.text_config !== null) {
    if (!isPlainObject(config.text_config)) {
      throw new Error(`${configPath}: field 'text_config' must be an object`);
    }
    const t = config.text_config.model_type;
    if (t !== undefined && typeof t !== "string") {
      throw new Error(`${configPath}: field 'text_config.model_type' must be a string`);
    }
    textModelType = t;
  }
  const checkpoint = await openCheckpoint(dir);
  return {
    dir,
    configPath,
    config: Object.freeze(config),
    modelType,
    textModelType,
    checkpoint,
    tokenizer: once(() => loadTokenizer(dir)),
    imageProcessor: once(() => loadImageProcessor(dir)),
    close: () => checkpoint.close(),
  };
}

/** A function that calls `load` once and then returns the same promise (retrying a failure). */
function once<T>(load: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | undefined;
  return () => {
    if (pending === undefined) {
      pending = load();
      pending.catch(() => pending = undefined);
    }
    return pending;
  };
}

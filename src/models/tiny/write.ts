/**
 * Writing a complete tiny random-weight model directory in a Hugging Face layout:
 * `config.json`, `model.safetensors` (f32), `tokenizer.json` + `tokenizer_config.json`, and
 * `special_tokens_map.json` + `preprocessor_config.json` (`transformers` 4) or
 * `processor_config.json` (`transformers` 5; see `layout.ts`). The directory is built next to
 * the target and renamed into place, so the target is either absent/old or complete.
 *
 * @module
 */
import { join, resolve } from "node:path";
import { writeJsonAtomic } from "../../io/atomic.ts";
import { beginDir, directoryState } from "../../io/atomic_dir.ts";
import { writeSafetensors } from "../../io/safetensors.ts";
import { SINGLE_FILE } from "../../io/sharded.ts";
import {
  type TinyArch,
  tinyConfigJson,
  type TinyDims,
  tinyDims,
  type TinySizeOptions,
} from "./configs.ts";
import { checkLayout, type HfLayout, TINY_FILES } from "./layout.ts";
import { writeBlipPreprocessor, writeClipPreprocessor } from "./preprocessor.ts";
import { writeLlamaTokenizer, writeOptTokenizer } from "./tokenizer.ts";
import type { Tensor } from "../../tensor/tensor.ts";
import { tinyWeights, tinyWeightSpecs } from "./weights.ts";

/** Options of {@linkcode writeTinyModel}. */
export interface TinyModelOptions extends TinySizeOptions {
  /** The architecture. */
  readonly arch: TinyArch;
  /** Seed of the weights (default 0); the same seed gives the same bytes. */
  readonly seed?: number;
  /** Training text of the tokenizer's merges (default: the built-in English corpus). */
  readonly corpus?: string;
  /**
   * The weights to write instead of random ones (e.g. trained ones), by Hugging Face key; every
   * tensor of the architecture, of its shape (checked), and nothing else.
   */
  readonly weights?: Readonly<Record<string, Tensor<"f32">>>;
  /** Replace a non-empty target directory (default false: refuse). */
  readonly force?: boolean;
  /** The files' layout: `v4` or `v5` (default `v4`). */
  readonly layout?: HfLayout;
}

/** What {@linkcode writeTinyModel} wrote. */
export interface TinyModelSummary {
  /** The directory (absolute). */
  readonly dir: string;
  /** The sizes used. */
  readonly dims: TinyDims;
  /** Number of tensors in `model.safetensors`. */
  readonly tensors: number;
  /** Number of weights (elements) in `model.safetensors`. */
  readonly parameters: number;
  /** Total size of the files in bytes. */
  readonly bytes: number;
}

/** The given `weights`, checked against the specs of `dims`, or random ones from `seed`. */
function weightsOf(
  dims: TinyDims,
  seed: number,
  weights: Readonly<Record<string, Tensor<"f32">>> | undefined,
): Readonly<Record<string, Tensor<"f32">>> {
  if (weights === undefined) return tinyWeights(dims, seed);
  const specs = tinyWeightSpecs(dims);
  for (const { name, shape } of specs) {
    const t = weights[name];
    if (t === undefined) throw new Error(`make-tiny: weight '${name}' is missing`);
    if (t.dtype !== "f32" || t.shape.join() !== shape.join()) {
      throw new Error(
        `make-tiny: weight '${name}' is ${t.dtype}[${t.shape}], expected f32[${shape}]`,
      );
    }
  }
  if (Object.keys(weights).length !== specs.length) {
    const known = new Set(specs.map((s) => s.name));
    const extra = Object.keys(weights).filter((k) => !known.has(k));
    throw new Error(`make-tiny: unexpected weights ${extra.map((k) => `'${k}'`).join(", ")}`);
  }
  return weights;
}

/** Writes the files of the tiny model into the existing empty directory `dir`. */
async function writeFiles(
  dir: string,
  dims: TinyDims,
  weights: Readonly<Record<string, Tensor<"f32">>>,
  layout: HfLayout,
  corpus: string | undefined,
): Promise<number[]> {
  await writeJsonAtomic(join(dir, "config.json"), tinyConfigJson(dims));
  await writeSafetensors(join(dir, SINGLE_FILE), weights, { format: "pt" });
  const { vocab, maxPositions: modelMaxLength } = dims.text;
  const { imageSize, patchSize } = dims.vision;
  const queryTokens = { num_query_tokens: dims.qformer?.queryTokens };
  switch (dims.arch) {
    case "blip2-opt":
      await writeOptTokenizer(dir, { vocabSize: vocab, modelMaxLength, layout, corpus });
      await writeBlipPreprocessor(dir, { imageSize, layout, processorFields: queryTokens });
      break;
    case "llava":
      await writeLlamaTokenizer(dir, {
        vocabSize: vocab,
        imageToken: true,
        padToken: true,
        modelMaxLength,
        layout,
        corpus,
      });
      await writeClipPreprocessor(dir, {
        imageSize,
        layout,
        processorFields: {
          image_token: "<image>",
          num_additional_image_tokens: 1,
          patch_size: patchSize,
          vision_feature_select_strategy: "default",
        },
      });
      break;
    case "minigpt4":
      await writeLlamaTokenizer(dir, { vocabSize: vocab, modelMaxLength, layout, corpus });
      await writeBlipPreprocessor(dir, { imageSize, layout, processorFields: queryTokens });
      break;
  }
  return Object.values(weights).map((t) => t.size);
}

/**
 * Writes the tiny `options.arch` model into directory `out` (created, with its parent if
 * needed). The files are built in a temporary directory next to `out` and renamed into place;
 * a non-empty `out` is refused unless `options.force`, which replaces it (the old directory is
 * moved aside first and removed once the new one is in place; leftovers of a killed run are
 * cleaned up first, see `src/io/atomic_dir.ts`). Throws naming `out` when it is a file,
 * non-empty without `force`, or the write fails (the temporary directory is removed).
 *
 * @example
 * ```ts
 * import { writeTinyModel } from "./write.ts";
 * const parent = await Deno.makeTempDir();
 * const summary = await writeTinyModel(`${parent}/tiny-llava`, { arch: "llava", seed: 1 });
 * if (summary.dims.text.layers !== 4 || summary.bytes > 4_000_000) throw new Error("size");
 * await Deno.remove(parent, { recursive: true });
 * ```
 */
export async function writeTinyModel(
  out: string,
  options: TinyModelOptions,
): Promise<TinyModelSummary> {
  const dir = resolve(out);
  const seed = options.seed ?? 0;
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new Error(`make-tiny: seed must be an integer in [0, 2^53), got ${seed}`);
  }
  const dims = tinyDims(options.arch, options);
  const layout = checkLayout(options.layout ?? "v4");
  const weights = weightsOf(dims, seed, options.weights);
  const pending = await beginDir(dir, { replace: true });
  let sizes: number[];
  try {
    const state = await directoryState(dir, "make-tiny");
    if (state === "full" && !options.force) {
      throw new Error(`make-tiny: ${dir} is not empty (pass --force to replace it)`);
    }
    sizes = await writeFiles(pending.tmp, dims, weights, layout, options.corpus);
    if (state === "empty") await Deno.remove(dir);
    await pending.commit();
  } catch (e) {
    await pending.abort();
    throw e;
  }
  let bytes = 0;
  for (const f of TINY_FILES[layout]) bytes += (await Deno.stat(join(dir, f))).size;
  return {
    dir,
    dims,
    tensors: sizes.length,
    parameters: sizes.reduce((a, b) => a + b, 0),
    bytes,
  };
}

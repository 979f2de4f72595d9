/**
 * The backbone table, as transformers.js maps a config's `model_type` to the classes that
 * build it: {@linkcode DECODERS} maps a language model's `model_type` to its loader, and each
 * row of {@linkcode BACKBONES} says, for one vision-language `model_type`, which language model
 * it holds, which file wraps it as a `Vllm`, its names, LiveEdit's default config for it, where
 * its decoder layers are, and where its context length is read. A new backbone is one model
 * file (`vllm/<name>.ts`, a `Vllm` subclass and its loader) and one row here.
 *
 * `src/models` knows nothing of editors: `editorConfig` is only the name of a shipped editor
 * config (`src/editors/liveedit/configs/<name>.json`).
 *
 * @example
 * ```ts ignore
 * const vllm = await loadVllm("models/llava-v1.5-7b"); // picked by config.json's model_type
 * backboneOf("llava")?.editorConfig; // "llava"
 * backboneByName("blip2-opt-2.7b")?.modelType; // "blip-2"
 * ```
 *
 * @module
 */
import { type ModelDir, openModelDir } from "../io/model_dir.ts";
import {
  type CausalDecoder,
  type DecoderSource,
  type DecoderType,
  openDecoderDir,
} from "./decoder.ts";
import { ConfigFields } from "./hf_config.ts";
import { loadLlama } from "./llama.ts";
import { loadOpt } from "./opt.ts";
import { type ParamInventory, paramInventory } from "./placement.ts";
import { loadBlip2Opt } from "./vllm/blip2_opt.ts";
import { loadLlava } from "./vllm/llava.ts";
import { loadMiniGpt4 } from "./vllm/minigpt4.ts";
import type { Vllm, VllmFamily } from "./vllm/vllm.ts";
import { type ComputeDType, computeDtypeFor, WeightStore } from "./weights.ts";

/** Loads a language model from its source (see `DecoderSource`), computing in `computeDtype`. */
export type DecoderLoader = (
  source: DecoderSource,
  computeDtype?: ComputeDType,
) => Promise<CausalDecoder>;

/** The loader of each language model `model_type`. */
export const DECODERS: Readonly<Record<DecoderType, DecoderLoader>> = {
  opt: loadOpt,
  llama: loadLlama,
};

/** One vision-language backbone: a row of {@linkcode BACKBONES}. */
export interface Backbone {
  /** `model_type` of its `config.json`. */
  readonly modelType: VllmFamily;
  /** `text_config.model_type`: its language model, a key of {@linkcode DECODERS}. */
  readonly decoder: DecoderType;
  /** Builds the `Vllm` from the opened directory, computing in `computeDtype`. */
  readonly load: (dir: ModelDir, computeDtype?: ComputeDType) => Promise<Vllm>;
  /** Short name (`-mn blip2`). */
  readonly name: string;
  /** Full names of the released models (`get_full_model_name` of the original). */
  readonly displayNames: readonly string[];
  /** Name of LiveEdit's shipped config for it (`configs/<name>.json`). */
  readonly editorConfig: string;
  /**
   * Module path of the decoder layers in the Hugging Face model (`<layerPath>.<i>` is layer
   * `i`), as the original's edit-layer hooks name them.
   */
  readonly layerPath: string;
  /** Dotted `config.json` field holding the context length (see {@linkcode contextLengthOf}). */
  readonly contextLength: string;
}

/** The backbones LiveEdit edits. */
export const BACKBONES: readonly Backbone[] = [
  {
    modelType: "blip-2",
    decoder: "opt",
    load: loadBlip2Opt,
    name: "blip2",
    displayNames: ["blip2-opt-2.7b"],
    editorConfig: "blip2",
    layerPath: "language_model.model.decoder.layers",
    contextLength: "text_config.max_position_embeddings",
  },
  {
    modelType: "llava",
    decoder: "llama",
    load: loadLlava,
    name: "llava",
    displayNames: ["llava-v1.5-7b"],
    editorConfig: "llava",
    layerPath: "language_model.model.layers",
    contextLength: "text_config.max_position_embeddings",
  },
  {
    modelType: "minigpt4",
    decoder: "llama",
    load: loadMiniGpt4,
    name: "minigpt4",
    displayNames: ["minigpt-4-vicuna-7b"],
    editorConfig: "minigpt4",
    layerPath: "language_model.model.layers",
    contextLength: "text_config.max_position_embeddings",
  },
];

/** The row of `modelType` (a `config.json` `model_type`), or undefined. */
export function backboneOf(modelType: string): Backbone | undefined {
  return BACKBONES.find((b) => b.modelType === modelType);
}

/** The row named `name`: its short name or one of its display names; undefined otherwise. */
export function backboneByName(name: string): Backbone | undefined {
  return BACKBONES.find((b) => b.name === name || b.displayNames.includes(name));
}

/**
 * The context length of the model in `dir` (its row's {@linkcode Backbone.contextLength}
 * field), an integer >= 1; throws naming the file and field.
 */
export function contextLengthOf(dir: ModelDir): number {
  const path = backboneRow(dir).contextLength.split(".");
  let fields = new ConfigFields(dir.config, dir.configPath);
  for (const section of path.slice(0, -1)) fields = fields.section(section);
  return fields.int(path[path.length - 1], undefined, 1);
}

/** The row of `dir`'s `model_type`; throws naming `config.json` and listing the supported. */
function backboneRow(dir: ModelDir): Backbone {
  const row = backboneOf(dir.modelType);
  if (row === undefined) {
    const decoder = Object.hasOwn(DECODERS, dir.modelType) ? " (a language model alone)" : "";
    throw new Error(
      `unsupported model_type '${dir.modelType}' in ${dir.configPath}${decoder}: a ` +
        `vision-language model is one of ${BACKBONES.map((b) => b.modelType).join(", ")}`,
    );
  }
  return row;
}

/**
 * Loads the decoder of `source` (see {@linkcode DecoderSource}) by its config's `model_type`
 * ({@linkcode DECODERS}); an unsupported type is an error naming the config file, the field
 * and the supported types.
 */
export async function loadDecoder(
  source: DecoderSource,
  computeDtype: ComputeDType = "f32",
): Promise<CausalDecoder> {
  const resolved = typeof source === "string" ? await openDecoderDir(source, computeDtype) : source;
  const type = resolved.config.oneOf(
    "model_type",
    Object.keys(DECODERS) as (keyof typeof DECODERS)[],
  );
  return await DECODERS[type](resolved, computeDtype);
}

/** Options of {@linkcode loadVllm}. */
export interface LoadVllmOptions {
  /**
   * The device the model's graphs will run on (default `"cpu"`): with {@linkcode computeDtypeFor}
   * it picks the compute dtype, f16 on `cuda:N`/`webgpu` for an f16 checkpoint, else f32.
   */
  readonly device?: string;
  /** The compute dtype, overriding the choice from `device`. */
  readonly computeDtype?: ComputeDType;
}

/**
 * Loads the VLLM in model directory `dir` by its row (`model_type`), computing in
 * `options.computeDtype`, else in {@linkcode computeDtypeFor}`(options.device ?? "cpu",
 * checkpoint)`; graph inputs and outputs are f32 either way. Throws naming `config.json` for
 * a `model_type` without a row and for a language model other than the row's.
 */
export async function loadVllm(dir: string, options: LoadVllmOptions = {}): Promise<Vllm> {
  const md = await openModelDir(dir);
  try {
    const row = backboneRow(md);
    new ConfigFields(md.config, md.configPath).section("text_config")
      .oneOf("model_type", [row.decoder]);
    const dtype = options.computeDtype ??
      computeDtypeFor(options.device ?? "cpu", await WeightStore.open(md.checkpoint));
    return await row.load(md, dtype);
  } catch (error) {
    md.close();
    throw error;
  }
}

/**
 * The parameters of `vllm`'s checkpoint by part (`paramInventory` of `placement.ts`, by its
 * row's layer path), read from the checkpoint's headers: nothing is loaded.
 */
export async function paramInventoryOf(vllm: Vllm): Promise<ParamInventory> {
  const row = backboneRow(vllm.dir);
  return paramInventory(
    await vllm.dir.checkpoint.tensors(),
    row.layerPath,
    vllm.numLayers,
    vllm.config.tieWordEmbeddings,
    vllm.dir.checkpoint.path,
  );
}

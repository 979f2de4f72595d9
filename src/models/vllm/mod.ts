/**
 * The three vision-language models LiveEdit edits, behind one interface ({@linkcode Vllm}):
 * BLIP-2 OPT (`blip2_opt.ts`), LLaVA-1.5 (`llava.ts`) and MiniGPT-4 (`minigpt4.ts`, directory
 * layout in `minigpt4_config.ts`), and {@linkcode VllmRunner} to run them. Importing this module
 * registers their `model_type`s (`blip-2`, `llava`, `minigpt4`) with the model registry of
 * `src/io/model_dir.ts`; {@linkcode loadVllm} loads a directory through it.
 *
 * @example
 * ```ts ignore
 * const vllm = await loadVllm("models/blip2-opt-2.7b");
 * const batch = await vllm.prepare([{ image: "cat.jpg", prompt: "What is this?", target: "a cat" }]);
 * const runner = new VllmRunner(vllm);
 * const hidden = await runner.hiddenAt(batch, 21); // output of decoder layer 21
 * ```
 *
 * @module
 */
import {
  type ModelDir,
  modelFactory,
  openModelDir,
  registerModelType,
} from "../../io/model_dir.ts";
import { type ComputeDType, computeDtypeFor, WeightStore } from "../weights.ts";
import { BLIP2_MODEL_TYPE, loadBlip2Opt } from "./blip2_opt.ts";
import { LLAVA_MODEL_TYPE, loadLlava } from "./llava.ts";
import { MINIGPT4_MODEL_TYPE } from "./minigpt4_config.ts";
import { loadMiniGpt4 } from "./minigpt4.ts";
import type { Vllm, VllmFamily } from "./vllm.ts";

export * from "./vllm.ts";
export * from "./runner.ts";
export * from "./context.ts";
export * from "./blip2_opt.ts";
export * from "./llava.ts";
export * from "./minigpt4.ts";
export * from "./minigpt4_config.ts";

/** The loader of each VLLM `model_type` (computing in `computeDtype`, default f32). */
export const VLLM_LOADERS: Readonly<
  Record<VllmFamily, (dir: ModelDir, computeDtype?: ComputeDType) => Promise<Vllm>>
> = {
  [BLIP2_MODEL_TYPE]: loadBlip2Opt,
  [LLAVA_MODEL_TYPE]: loadLlava,
  [MINIGPT4_MODEL_TYPE]: loadMiniGpt4,
};

for (const [type, load] of Object.entries(VLLM_LOADERS)) registerModelType(type, (d) => load(d));

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
 * Loads the VLLM in model directory `dir` (its `model_type` picks the architecture), computing
 * in `options.computeDtype`, else in {@linkcode computeDtypeFor}`(options.device ?? "cpu",
 * checkpoint)`; graph inputs and outputs are f32 either way. Throws naming `config.json` for
 * an unsupported `model_type`, and when the directory holds a model that is not a VLLM.
 */
export async function loadVllm(dir: string, options: LoadVllmOptions = {}): Promise<Vllm> {
  const md = await openModelDir(dir);
  try {
    modelFactory(md); // throws for an unregistered model_type
    if (!Object.hasOwn(VLLM_LOADERS, md.modelType)) {
      throw new Error(
        `${dir}/config.json: model_type is not a vision-language model (${
          Object.keys(VLLM_LOADERS).join(", ")
        })`,
      );
    }
    const load = VLLM_LOADERS[md.modelType as VllmFamily];
    const dtype = options.computeDtype ??
      computeDtypeFor(options.device ?? "cpu", await WeightStore.open(md.checkpoint));
    return await load(md, dtype);
  } catch (error) {
    md.close();
    throw error;
  }
}

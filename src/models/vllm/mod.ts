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
import { loadModel, type ModelDir, registerModelType } from "../../io/model_dir.ts";
import { BLIP2_MODEL_TYPE, loadBlip2Opt } from "./blip2_opt.ts";
import { LLAVA_MODEL_TYPE, loadLlava } from "./llava.ts";
import { MINIGPT4_MODEL_TYPE } from "./minigpt4_config.ts";
import { loadMiniGpt4 } from "./minigpt4.ts";
import { Vllm, type VllmFamily } from "./vllm.ts";

export * from "./vllm.ts";
export * from "./runner.ts";
export * from "./blip2_opt.ts";
export * from "./llava.ts";
export * from "./minigpt4.ts";
export * from "./minigpt4_config.ts";

/** The loader of each VLLM `model_type` (computing in f32). */
export const VLLM_LOADERS: Readonly<Record<VllmFamily, (dir: ModelDir) => Promise<Vllm>>> = {
  [BLIP2_MODEL_TYPE]: (dir) => loadBlip2Opt(dir),
  [LLAVA_MODEL_TYPE]: (dir) => loadLlava(dir),
  [MINIGPT4_MODEL_TYPE]: (dir) => loadMiniGpt4(dir),
};

for (const [type, load] of Object.entries(VLLM_LOADERS)) registerModelType(type, load);

/**
 * Loads the VLLM in model directory `dir` through the model registry (its `model_type` picks
 * the architecture). Throws naming `config.json` for an unsupported `model_type`, and when the
 * directory holds a model that is not a VLLM.
 */
export async function loadVllm(dir: string): Promise<Vllm> {
  const model = await loadModel(dir);
  if (!(model instanceof Vllm)) {
    throw new Error(
      `${dir}/config.json: model_type is not a vision-language model (${
        Object.keys(VLLM_LOADERS).join(", ")
      })`,
    );
  }
  return model;
}

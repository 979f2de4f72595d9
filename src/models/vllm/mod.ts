/**
 * The three vision-language models LiveEdit edits, behind one interface ({@linkcode Vllm}):
 * BLIP-2 OPT (`blip2_opt.ts`), LLaVA-1.5 (`llava.ts`) and MiniGPT-4 (`minigpt4.ts`, directory
 * layout in `minigpt4_config.ts`), and {@linkcode VllmRunner} to run them. `loadVllm` loads a
 * directory by the row of its `model_type` in the backbone table (`../backbones.ts`).
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
export * from "./vllm.ts";
export * from "./processor.ts";
export * from "./runner.ts";
export * from "./blip2_opt.ts";
export * from "./llava.ts";
export * from "./minigpt4.ts";
export * from "./minigpt4_config.ts";
export { loadVllm, type LoadVllmOptions } from "../backbones.ts";
export * from "./place.ts";

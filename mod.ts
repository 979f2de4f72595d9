/**
 * LiveEdit, lifelong knowledge editing for vision-language models (CVPR 2025, _Lifelong
 * Knowledge Editing for Vision Language Models with Low-Rank Mixture-of-Experts_), in
 * TypeScript on ONNX Runtime. It loads BLIP-2 OPT, LLaVA-1.5 and MiniGPT-4 from Hugging Face
 * model directories (the `transformers` 4 and 5 layouts), trains the LiveEdit editor on a
 * frozen backbone with its own graph builder, autodiff and Adam, applies edits one after
 * another (each a low-rank expert, retrieved and fused by visual and textual routing), and
 * scores them on E-VQA, E-IC and VLKEB with the metrics of the paper.
 *
 * - Editing: {@linkcode liveedit} (`openLiveEditModel`, `createLiveEditTrainer`, the shipped
 *   configs), the {@linkcode EditingModel} and {@linkcode EditorTrainer} interfaces, the
 *   expert repository and training checkpoints; the unedited backbone as a baseline
 *   ({@linkcode openUneditedModel}, `-en none`).
 * - Backbones: {@linkcode loadVllm}, {@linkcode VllmRunner}; model directories, tokenizers and
 *   image processors.
 * - Data: the E-VQA, E-IC and VLKEB loaders ({@linkcode loadDataset}); a synthetic benchmark of
 *   drawn shapes in the E-VQA layout (`synthetic`, `deno task make-synthetic`).
 * - Training a VLLM's own weights: {@linkcode VllmPretrainer} (the model's weights lifted into
 *   graph inputs, {@linkcode liftExternals}), as `deno task demo` pretrains its tiny BLIP-2.
 * - Graphs: {@linkcode Graph}, the op builders under `op`, {@linkcode grad}, lowering to ONNX
 *   ({@linkcode toModelProto}) and the compile cache ({@linkcode compileModel}).
 * - Runtime: devices (`cpu`, `cuda:N`, `webgpu`), {@linkcode LocalSession},
 *   {@linkcode DeviceWorker}, {@linkcode ModelRunner} (a compiled graph in-thread or in a device
 *   Worker; {@linkcode compileRunner} and {@linkcode RunnerCache} make them from graphs),
 *   checked outputs ({@linkcode f32}).
 * - Host tensors: {@linkcode Tensor}, creation helpers, a seeded {@linkcode Rng}, comparisons;
 *   the naive reference ops under `host`.
 * - IO: safetensors, sharded checkpoints, atomic writes.
 *
 * The command-line tasks are exported too: `deno run -A jsr:@liveedit/core/train --help`
 * (also `/test-edit` and `/infer`).
 *
 * @example Read a shipped editor config
 * ```ts
 * import { liveedit } from "@liveedit/core";
 * const config = await liveedit.loadConfig("blip2");
 * console.log(config.dims.llmMidDim, config.editLayerI); // 2560 21
 * ```
 *
 * @example Edit one fact of a BLIP-2 model and ask again
 * ```ts ignore
 * import { liveedit } from "@liveedit/core";
 * const model = await liveedit.openLiveEditModel({
 *   model: "models/blip2-opt-2.7b", // a Hugging Face model directory
 *   config: "blip2",
 *   weights: "editor.safetensors", // trained editor weights, e.g. a training checkpoint's
 * });
 * const fact = { image: "cat.jpg", prompt: "What animal is this? The answer is:", target: "a dog" };
 * await model.edit(fact);
 * const [prediction] = await model.predict([fact]); // argmax ids at the target's positions
 * await model.close();
 * ```
 *
 * @module
 */
export * from "./src/tensor/dtype.ts";
export * from "./src/tensor/tensor.ts";
export * from "./src/tensor/create.ts";
export * from "./src/tensor/elements.ts";
export * from "./src/tensor/rng.ts";
export * from "./src/tensor/compare.ts";
export * from "./src/tensor/format.ts";
export * as host from "./src/tensor/ops.ts";
export * from "./src/graph/ir.ts";
export * as op from "./src/graph/ops.ts";
export { grad } from "./src/graph/grad.ts";
export * from "./src/graph/lift.ts";
export * from "./src/graph/onnx.ts";
export * from "./src/graph/compile.ts";
export * from "./src/graph/runner.ts";
export {
  assertDeviceAvailable,
  CUDA_INSTALL_COMMAND,
  cudaProviderStatus,
  type DeviceOptions,
  type DeviceSpec,
  explainProviderError,
  type GraphOptimizationLevel,
  ortBindingDir,
  parseDevice,
  replicaGroups,
  toDeviceSpec,
} from "./src/runtime/device.ts";
export * from "./src/runtime/session.ts";
export * from "./src/runtime/device_worker.ts";
export * from "./src/runtime/telemetry.ts";
export * from "./src/runtime/runner.ts";
export * from "./src/runtime/outputs.ts";
export * from "./src/io/atomic.ts";
export * from "./src/io/atomic_dir.ts";
export * from "./src/io/safetensors.ts";
export * from "./src/io/sharded.ts";
export * from "./src/io/tokenizer.ts";
export * from "./src/io/image.ts";
export * from "./src/io/image_file.ts";
export * from "./src/io/model_dir.ts";
export * from "./src/models/weights.ts";
export * from "./src/train/adam.ts";
export * from "./src/train/schedule.ts";
export * from "./src/train/checkpoint.ts";
export * from "./src/train/trainer.ts";
export * from "./src/train/data_parallel.ts";
export * from "./src/train/pretrain.ts";
export * from "./src/editors/liveedit/repository/mod.ts";
export * from "./src/data/mod.ts";
export * as synthetic from "./src/data/synthetic/mod.ts";
export * from "./src/models/vllm/mod.ts";
export * from "./src/models/backbones.ts";
export * from "./src/models/placement.ts";
export * from "./src/models/context.ts";
export * from "./src/editors/api.ts";
export * from "./src/editors/none.ts";
export * as liveedit from "./src/editors/liveedit/mod.ts";
// Types that the public API above refers to (worker messages, model configurations).
export type { Request as WorkerRequest, WireTensor } from "./src/runtime/protocol.ts";
export type {
  BeginOptions,
  CausalDecoder,
  DecoderConfig,
  DecoderKeys,
  DecoderSource,
  DecoderState,
  DecoderType,
  KeyValue,
  ResidualHook,
  Rotary,
} from "./src/models/decoder.ts";
export type { LlamaConfig } from "./src/models/llama.ts";
export { type Activation, ACTIVATIONS, type VitGeometry } from "./src/models/layers.ts";
export type {
  ClipVisionConfig,
  FeatureSelection,
  FeatureSelectStrategy,
} from "./src/models/clip_vision.ts";
export type { Blip2VisionConfig } from "./src/models/blip2_vision.ts";
export type { Blip2Config, Blip2Keys, QFormerConfig } from "./src/models/qformer.ts";
export type { LlavaImageConfig } from "./src/models/llava_projector.ts";
export { ConfigFields } from "./src/models/hf_config.ts";

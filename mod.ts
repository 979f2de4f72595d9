/**
 * @liveedit/core: lifelong knowledge editing for vision-language models (LiveEdit), on
 * ONNX Runtime.
 *
 * - Host tensors: {@linkcode Tensor}, creation helpers, a seeded {@linkcode Rng}, comparisons;
 *   the naive reference ops under `host`.
 * - Graphs: {@linkcode Graph}, the op builders under `op`, {@linkcode grad}, lowering to ONNX
 *   ({@linkcode toModelProto}) and the compile cache ({@linkcode compileModel}).
 * - Runtime: devices, {@linkcode LocalSession}, {@linkcode DeviceWorker}, {@linkcode ModelRunner}
 *   (a compiled graph in-thread or in a device Worker; {@linkcode compileRunner} and
 *   {@linkcode RunnerCache} make them from graphs), checked outputs ({@linkcode f32}).
 * - IO: safetensors, sharded checkpoints, atomic writes.
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
export * from "./src/tensor/ort.ts";
export * as host from "./src/tensor/ops.ts";
export * from "./src/graph/ir.ts";
export * as op from "./src/graph/ops.ts";
export { grad } from "./src/graph/grad.ts";
export * from "./src/graph/onnx.ts";
export * from "./src/graph/compile.ts";
export * from "./src/graph/runner.ts";
export * from "./src/runtime/device.ts";
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
export * from "./src/editors/liveedit/repository/mod.ts";
export * from "./src/editors/liveedit/checkpoint.ts";
export * from "./src/data/mod.ts";
export * from "./src/models/vllm/mod.ts";
export * from "./src/models/backbones.ts";
export * from "./src/editors/api.ts";
export * as liveedit from "./src/editors/liveedit/mod.ts";

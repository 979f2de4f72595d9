/**
 * @liveedit/core: lifelong knowledge editing for vision-language models (LiveEdit), on
 * ONNX Runtime.
 *
 * @module
 */
export * from "./src/tensor/dtype.ts";
export * from "./src/tensor/tensor.ts";
export * from "./src/graph/ir.ts";

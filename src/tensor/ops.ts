/**
 * Naive, readable host reference implementations of tensor ops with numpy/ONNX semantics
 * (broadcasting, negative axes and indices, slicing rules). They are the independent
 * reference for graph ops in tests and in the doctor command: correctness over speed.
 *
 * Numeric ops compute in float64 and store the result once in the input's dtype (see
 * `storeNumbers` in `elements.ts` for the storage rules; f16/bf16 round through float32 as
 * ONNX Runtime does). Integer arithmetic is exact while values stay below 2^53 in magnitude;
 * integer `div` truncates toward zero. Shape ops (reshape, transpose, slice, concat, split,
 * gather, expand, where) copy elements bit for bit for every dtype, i64 included. Every op
 * returns a tensor with fresh data.
 *
 * @module
 */
export { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from "./half.ts";
export { broadcastShapes, normAxis, stridesOf } from "./ops/common.ts";
export * from "./ops/shape.ts";
export * from "./ops/math.ts";
export * from "./ops/reduce.ts";

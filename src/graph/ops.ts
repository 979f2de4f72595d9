/**
 * The op builders: every function takes graph values and returns graph values, with
 * shapes inferred when the graph is built. `stopGradient` marks a value as constant for
 * `grad`.
 *
 * @example
 * ```ts
 * import { Graph } from "./ir.ts";
 * import * as op from "./ops.ts";
 * const g = new Graph();
 * const x = g.input("x", "f32", ["batch", 4]);
 * const w = g.input("w", "f32", [3, 4]);
 * const y = op.relu(op.linear(x, w));
 * if (y.shape[1] !== 3) throw new Error("shape");
 * ```
 *
 * @module
 */
import type { Value } from "./ir.ts";
import { emit } from "./ops/core.ts";

export * from "./ops/core.ts";
export * from "./ops/elementwise.ts";
export * from "./ops/nn.ts";
export * from "./ops/reduce.ts";
export * from "./ops/shape_ops.ts";

/** The same value, with gradients stopped (PyTorch's `detach`). */
export function stopGradient(x: Value): Value {
  return emit("Identity", [x], {}, x.dtype, x.shape, { noGrad: true });
}

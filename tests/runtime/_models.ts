/**
 * Small models and reference computations shared by the runtime tests and bench.
 *
 * @module
 */
import { Graph } from "../../src/graph/ir.ts";
import { toModelProto } from "../../src/graph/onnx.ts";
import type { DType } from "../../src/tensor/dtype.ts";
import { Tensor } from "../../src/tensor/tensor.ts";

/** `y = a @ b` with `a: f32[n, k]`, `b: f32[k, m]`; `n` is the dynamic dim `"n"`. */
export function matmulModel(k: number, m: number): { graph: Graph; bytes: Uint8Array } {
  const g = new Graph();
  const a = g.input("a", "f32", ["n", k]);
  const b = g.input("b", "f32", [k, m]);
  const [y] = g.node("MatMul", [a, b], {}, [{ dtype: "f32", shape: ["n", m] }]);
  return { graph: g, bytes: toModelProto(g, { y }) };
}

/** A chain of `depth` MatMuls `x ← x @ w` of a square `f32[size, size]` `x` and `w`. */
export function matmulChainModel(size: number, depth: number): Uint8Array {
  const g = new Graph();
  let x = g.input("x", "f32", [size, size]);
  const w = g.input("w", "f32", [size, size]);
  for (let i = 0; i < depth; i++) {
    [x] = g.node("MatMul", [x, w], {}, [{ dtype: "f32", shape: [size, size] }]);
  }
  return toModelProto(g, { y: x });
}

/** `y = op(x)` for a one-input, one-output op such as `Identity` or `Cast`. */
export function unaryModel(
  op: string,
  x: { dtype: DType; shape: number[] },
  y: DType,
  attrs: Parameters<Graph["node"]>[2] = {},
): Uint8Array {
  const g = new Graph();
  const xv = g.input("x", x.dtype, x.shape);
  const [yv] = g.node(op, [xv], attrs, [{ dtype: y, shape: x.shape }]);
  return toModelProto(g, { y: yv });
}

/** `y = Reshape(x, shape)`: fails inside ONNX Runtime when `shape` does not fit `x`. */
export function reshapeModel(): Uint8Array {
  const g = new Graph();
  const x = g.input("x", "f32", ["n"]);
  const s = g.input("shape", "i64", [2]);
  const [y] = g.node("Reshape", [x, s], {}, [{ dtype: "f32", shape: ["r", "c"] }]);
  return toModelProto(g, { y });
}

/** A deterministic `f32` tensor with entries in [-1, 1) (linear congruential generator). */
export function randomF32(shape: number[], seed: number): Tensor<"f32"> {
  const n = shape.reduce((p, d) => p * d, 1);
  const data = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s / 2 ** 31 - 1;
  }
  return new Tensor("f32", shape, data);
}

/** Naive row-major product of `a: [n, k]` and `b: [k, m]`, accumulated in f64. */
export function naiveMatmul(a: Tensor<"f32">, b: Tensor<"f32">): Float64Array {
  const [n, k] = a.shape;
  const m = b.shape[1];
  const out = new Float64Array(n * m);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < m; j++) {
      let acc = 0;
      for (let p = 0; p < k; p++) acc += a.data[i * k + p] * b.data[p * m + j];
      out[i * m + j] = acc;
    }
  }
  return out;
}

/** Largest absolute difference between two equally long arrays. */
export function maxAbsDiff(x: ArrayLike<number>, y: ArrayLike<number>): number {
  if (x.length !== y.length) throw new Error(`lengths differ: ${x.length} vs ${y.length}`);
  let d = 0;
  for (let i = 0; i < x.length; i++) d = Math.max(d, Math.abs(x[i] - y[i]));
  return d;
}

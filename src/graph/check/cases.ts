/**
 * The op-check table: for every op the graph builder offers, a small case with its inputs,
 * the graph under test and an independent naive reference on host tensors. The same table
 * drives the test suite and `deno task doctor`.
 *
 * @module
 */
import type { DType } from "../../tensor/dtype.ts";
import { storeNumbers, toNumbers } from "../../tensor/elements.ts";
import type { Rng } from "../../tensor/rng.ts";
import { shapeSize, type Tensor } from "../../tensor/tensor.ts";
import * as ref from "../../tensor/ops.ts";
import type { Dim, Value } from "../ir.ts";
import * as op from "../ops.ts";

/** One input of a case. */
export interface CaseInput {
  /** Concrete shape fed at run time. */
  readonly shape: readonly number[];
  /** Declared dims (string names make them dynamic); default `shape`. */
  readonly dims?: readonly Dim[];
  /** Dtype when not the case's float dtype (e.g. `i64` indices). */
  readonly dtype?: DType;
  /** Fixed values (indices, masks); random otherwise. */
  readonly values?: readonly number[];
  /** Draw from [0.5, 1.5] instead of [-1, 1] (logs, roots, divisors). */
  readonly positive?: boolean;
  /** Exclude from the gradient check. */
  readonly noGrad?: boolean;
}

/** A check case. */
export interface OpCase {
  /** Unique name, e.g. `"MatMul batched"`. */
  readonly name: string;
  /** ONNX ops the case exercises (for the doctor's listing). */
  readonly ops: readonly string[];
  /** Float dtype on the device: f64, or f32 where ONNX Runtime's CPU provider lacks f64. */
  readonly dtype: "f64" | "f32";
  /** Inputs in order. */
  readonly inputs: readonly CaseInput[];
  /** Builds the output from the inputs. */
  build(...xs: Value[]): Value;
  /** The same computation on host tensors, in float64. */
  reference(...xs: Tensor[]): Tensor;
  /** Forward-only case (boolean or integer results). */
  readonly noGrad?: boolean;
}

/** Draws a case's host inputs from `rng`. */
export function caseInputs(c: OpCase, rng: Rng): Tensor[] {
  return c.inputs.map((spec) => {
    const n = shapeSize(spec.shape);
    const values = spec.values ??
      Array.from({ length: n }, () => spec.positive ? 0.5 + rng.uniform() : rng.uniform() * 2 - 1);
    if (values.length !== n) throw new Error(`case ${c.name}: fixed values do not fit the shape`);
    return storeNumbers(spec.dtype ?? c.dtype, spec.shape, values);
  });
}

const f = (shape: number[], extra: Partial<CaseInput> = {}): CaseInput => ({ shape, ...extra });
const ids = (shape: number[], values: number[]): CaseInput => ({
  shape,
  values,
  dtype: "i64",
  noGrad: true,
});

/** A unary elementwise case in f64 (or `dtype`). */
function unaryCase(
  name: string,
  build: (x: Value) => Value,
  fn: (v: number) => number,
  options: { positive?: boolean; dtype?: "f32" | "f64"; ops?: string[] } = {},
): OpCase {
  return {
    name,
    ops: options.ops ?? [name],
    dtype: options.dtype ?? "f64",
    inputs: [f([2, 3], { positive: options.positive })],
    build,
    reference: (x) => ref.map(x, fn),
  };
}

const gelu = (v: number) => 0.5 * v * (1 + ref.erfNumber(v / Math.SQRT2));
const geluTanh = (v: number) =>
  0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

/** Naive einsum over explicit labels (reference only). */
function einsumRef(equation: string, ...xs: Tensor[]): Tensor {
  const [lhs, out] = equation.split("->");
  const terms = lhs.split(",");
  const size = new Map<string, number>();
  terms.forEach((t, i) => [...t].forEach((l, j) => size.set(l, xs[i].shape[j])));
  const labels = [...size.keys()];
  const outShape = [...out].map((l) => size.get(l)!);
  const result = new Float64Array(shapeSize(outShape));
  const values = xs.map(toNumbers);
  const idx = new Map<string, number>();
  const offset = (t: string, shape: readonly number[]) =>
    [...t].reduce((o, l, j) => o * shape[j] + idx.get(l)!, 0);
  const visit = (k: number) => {
    if (k === labels.length) {
      let p = 1;
      terms.forEach((t, i) => (p *= values[i][offset(t, xs[i].shape)]));
      result[offset(out, outShape)] += p;
      return;
    }
    for (let v = 0; v < size.get(labels[k])!; v++) {
      idx.set(labels[k], v);
      visit(k + 1);
    }
  };
  visit(0);
  return storeNumbers(xs[0].dtype, outShape, result);
}

/** Naive 2-D convolution, NCHW (reference only). */
function convRef(x: Tensor, w: Tensor, b: Tensor | null, stride: number, pad: number): Tensor {
  const [n, c, h, wd] = x.shape;
  const [o, , kh, kw] = w.shape;
  const ho = Math.floor((h + 2 * pad - kh) / stride) + 1;
  const wo = Math.floor((wd + 2 * pad - kw) / stride) + 1;
  const xv = toNumbers(x), wv = toNumbers(w), bv = b ? toNumbers(b) : null;
  const out = new Float64Array(n * o * ho * wo);
  for (let ni = 0; ni < n; ni++) {
    for (let oi = 0; oi < o; oi++) {
      for (let y = 0; y < ho; y++) {
        for (let xq = 0; xq < wo; xq++) {
          let s = bv ? bv[oi] : 0;
          for (let ci = 0; ci < c; ci++) {
            for (let i = 0; i < kh; i++) {
              for (let j = 0; j < kw; j++) {
                const yy = y * stride + i - pad, xx = xq * stride + j - pad;
                if (yy < 0 || yy >= h || xx < 0 || xx >= wd) continue;
                s += xv[((ni * c + ci) * h + yy) * wd + xx] * wv[((oi * c + ci) * kh + i) * kw + j];
              }
            }
          }
          out[((ni * o + oi) * ho + y) * wo + xq] = s;
        }
      }
    }
  }
  return storeNumbers(x.dtype, [n, o, ho, wo], out);
}

/** Keeps entries with `col - row >= k` (upper) or `<= k` (lower) of the last two axes. */
function triluRef(x: Tensor, upper: boolean, k: number): Tensor {
  const [r, c] = x.shape.slice(-2);
  return ref.map(x, (v, i) => {
    const col = i % c, row = Math.floor(i / c) % r;
    return (upper ? col - row >= k : col - row <= k) ? v : 0;
  });
}

/** Top-k values along the last axis, sorted descending. */
function topKRef(x: Tensor, k: number): Tensor {
  const n = x.shape[x.rank - 1];
  const v = toNumbers(x);
  const out: number[] = [];
  for (let r = 0; r < v.length / n; r++) {
    out.push(...Array.from(v.subarray(r * n, (r + 1) * n)).sort((a, b) => b - a).slice(0, k));
  }
  return storeNumbers(x.dtype, [...x.shape.slice(0, -1), k], out);
}

/** `out[i][j] = x[i][idx[i][j]]` along axis 1 of 2-D tensors. */
function gatherElementsRef(x: Tensor, idx: Tensor): Tensor {
  const [, c] = x.shape;
  const [, k] = idx.shape;
  const v = toNumbers(x), iv = toNumbers(idx);
  return storeNumbers(x.dtype, idx.shape, Array.from(iv, (j, p) => v[Math.floor(p / k) * c + j]));
}

const asF64 = (t: Tensor) => ref.cast(t, "f64");

/** Every case, in the order the doctor prints them. */
export const CASES: readonly OpCase[] = [
  {
    name: "Add broadcast",
    ops: ["Add"],
    dtype: "f64",
    inputs: [f([2, 3]), f([3])],
    build: (a, b) => op.add(a, b),
    reference: (a, b) => ref.add(a, b),
  },
  {
    name: "Add dynamic batch",
    ops: ["Add"],
    dtype: "f64",
    inputs: [f([2, 3], { dims: ["batch", 3] }), f([1, 3])],
    build: (a, b) => op.add(a, b),
    reference: (a, b) => ref.add(a, b),
  },
  {
    name: "Sub broadcast both",
    ops: ["Sub"],
    dtype: "f64",
    inputs: [f([2, 1, 3]), f([4, 1])],
    build: (a, b) => op.sub(a, b),
    reference: (a, b) => ref.sub(a, b),
  },
  {
    name: "Mul broadcast",
    ops: ["Mul"],
    dtype: "f64",
    inputs: [f([2, 3]), f([2, 1])],
    build: (a, b) => op.mul(a, b),
    reference: (a, b) => ref.mul(a, b),
  },
  {
    name: "Div broadcast",
    ops: ["Div"],
    dtype: "f64",
    inputs: [f([2, 3]), f([3], { positive: true })],
    build: (a, b) => op.div(a, b),
    reference: (a, b) => ref.div(a, b),
  },
  {
    name: "Pow",
    ops: ["Pow"],
    dtype: "f64",
    inputs: [f([2, 3], { positive: true }), f([3])],
    build: (a, b) => op.pow(a, b),
    reference: (a, b) => ref.pow(a, b),
  },
  unaryCase("Neg", op.neg, (v) => -v),
  unaryCase("Exp", op.exp, Math.exp),
  unaryCase("Log", op.log, Math.log, { positive: true }),
  unaryCase("Sqrt", op.sqrt, Math.sqrt, { positive: true }),
  unaryCase("Abs", op.abs, Math.abs),
  unaryCase("Relu", op.relu, (v) => Math.max(v, 0)),
  unaryCase("Sigmoid", op.sigmoid, sigmoid),
  unaryCase("Tanh", op.tanh, Math.tanh),
  unaryCase("Erf", op.erf, ref.erfNumber, { dtype: "f32" }),
  unaryCase("Gelu", (x) => op.gelu(x), gelu, { dtype: "f32" }),
  unaryCase("Gelu tanh", (x) => op.gelu(x, "tanh"), geluTanh, { ops: ["Gelu"] }),
  // f32: ONNX Runtime fuses x·σ(a·x) into com.microsoft.QuickGelu, which has no f64 kernel.
  unaryCase("QuickGelu", op.quickGelu, (v) => v * sigmoid(1.702 * v), {
    ops: ["Mul", "Sigmoid"],
    dtype: "f32",
  }),
  unaryCase("SiLU", op.silu, (v) => v * sigmoid(v), { ops: ["Mul", "Sigmoid"], dtype: "f32" }),
  unaryCase("Clip", (x) => op.clip(x, -0.5, 0.5), (v) => Math.min(Math.max(v, -0.5), 0.5)),
  {
    name: "MatMul batched",
    ops: ["MatMul"],
    dtype: "f64",
    inputs: [f([2, 3, 4]), f([4, 5])],
    build: (a, b) => op.matmul(a, b),
    reference: (a, b) => ref.matmul(a, b),
  },
  {
    name: "MatMul batch broadcast",
    ops: ["MatMul"],
    dtype: "f64",
    inputs: [f([2, 1, 3, 4]), f([3, 4, 2])],
    build: (a, b) => op.matmul(a, b),
    reference: (a, b) => ref.matmul(a, b),
  },
  {
    name: "MatMul vector",
    ops: ["MatMul", "Unsqueeze", "Squeeze"],
    dtype: "f64",
    inputs: [f([4]), f([2, 4, 3])],
    build: (a, b) => op.matmul(a, b),
    reference: (a, b) => ref.matmul(a, b),
  },
  {
    name: "MatMul dynamic",
    ops: ["MatMul"],
    dtype: "f64",
    inputs: [f([3, 4], { dims: ["batch", 4] }), f([4, 2])],
    build: (a, b) => op.matmul(a, b),
    reference: (a, b) => ref.matmul(a, b),
  },
  {
    name: "Gemm transposed",
    ops: ["Gemm"],
    dtype: "f64",
    inputs: [f([4, 3]), f([5, 4]), f([5])],
    build: (a, b, c) => op.gemm(a, b, c, { transA: true, transB: true, alpha: 0.5, beta: 2 }),
    reference: (a, b, c) =>
      ref.add(ref.mul(ref.matmul(ref.transpose(a), ref.transpose(b)), 0.5), ref.mul(c, 2)),
  },
  {
    name: "Linear",
    ops: ["MatMul", "Transpose", "Add"],
    dtype: "f64",
    inputs: [f([2, 3, 4], { dims: ["batch", 3, 4] }), f([5, 4]), f([5])],
    build: (x, w, b) => op.linear(x, w, b),
    reference: (x, w, b) => ref.add(ref.matmul(x, ref.transpose(w)), b),
  },
  {
    name: "Einsum batched product",
    ops: ["Einsum"],
    dtype: "f64",
    inputs: [f([2, 3, 4]), f([2, 4, 2])],
    build: (a, b) => op.einsum("bij,bjk->bik", a, b),
    reference: (a, b) => einsumRef("bij,bjk->bik", a, b),
  },
  {
    name: "Einsum reduce",
    ops: ["Einsum"],
    dtype: "f64",
    inputs: [f([3, 4]), f([4])],
    build: (a, b) => op.einsum("ij,j->i", a, b),
    reference: (a, b) => einsumRef("ij,j->i", a, b),
  },
  {
    name: "Einsum sum out",
    ops: ["Einsum"],
    dtype: "f64",
    inputs: [f([3, 4])],
    build: (a) => op.einsum("ij->j", a),
    reference: (a) => einsumRef("ij->j", a),
  },
  {
    name: "Softmax",
    ops: ["Softmax"],
    dtype: "f64",
    inputs: [f([2, 5])],
    build: (x) => op.softmax(x, -1),
    reference: (x) => ref.softmax(x, -1),
  },
  {
    name: "Softmax axis 0",
    ops: ["Softmax"],
    dtype: "f64",
    inputs: [f([3, 2])],
    build: (x) => op.softmax(x, 0),
    reference: (x) => ref.softmax(x, 0),
  },
  {
    name: "LogSoftmax",
    ops: ["LogSoftmax"],
    dtype: "f64",
    inputs: [f([2, 5])],
    build: (x) => op.logSoftmax(x),
    reference: (x) => ref.logSoftmax(x),
  },
  {
    name: "LayerNormalization",
    ops: ["LayerNormalization"],
    dtype: "f64",
    inputs: [f([2, 3, 5], { dims: ["batch", 3, 5] }), f([5]), f([5])],
    build: (x, w, b) => op.layerNorm(x, w, b, 1e-5),
    reference: (x, w, b) => ref.layerNorm(x, w, b, -1, 1e-5),
  },
  {
    name: "LayerNormalization two axes",
    ops: ["LayerNormalization"],
    dtype: "f64",
    inputs: [f([2, 3, 4]), f([3, 4]), f([3, 4])],
    build: (x, w, b) => op.layerNorm(x, w, b, 1e-5, -2),
    reference: (x, w, b) => ref.layerNorm(x, w, b, -2, 1e-5),
  },
  {
    name: "RMS norm",
    ops: ["ReduceMean", "Sqrt", "Div", "Mul"],
    dtype: "f64",
    inputs: [f([2, 5]), f([5])],
    build: (x, w) => op.rmsNorm(x, w, 1e-6),
    reference: (x, w) =>
      ref.mul(
        w,
        ref.div(
          x,
          ref.map(
            ref.mean(ref.mul(x, x), { axes: -1, keepdims: true }),
            (v) => Math.sqrt(v + 1e-6),
          ),
        ),
      ),
  },
  {
    name: "Reshape",
    ops: ["Reshape"],
    dtype: "f64",
    inputs: [f([2, 6])],
    build: (x) => op.reshape(x, [3, -1]),
    reference: (x) => ref.reshape(x, [3, 4]),
  },
  {
    name: "Reshape dynamic",
    ops: ["Reshape", "Shape", "Concat"],
    dtype: "f64",
    inputs: [f([2, 6], { dims: ["batch", 6] })],
    build: (x) => op.reshape(x, ["batch", 2, -1]),
    reference: (x) => ref.reshape(x, [2, 2, 3]),
  },
  {
    name: "Transpose",
    ops: ["Transpose"],
    dtype: "f64",
    inputs: [f([2, 3, 4])],
    build: (x) => op.transpose(x, [2, 0, 1]),
    reference: (x) => ref.transpose(x, [2, 0, 1]),
  },
  {
    name: "Concat dynamic",
    ops: ["Concat"],
    dtype: "f64",
    inputs: [f([2, 3], { dims: ["batch", "n"] }), f([2, 2], { dims: ["batch", 2] })],
    build: (a, b) => op.concat([a, b], 1),
    reference: (a, b) => ref.concat([a, b], 1),
  },
  {
    name: "Slice",
    ops: ["Slice"],
    dtype: "f64",
    inputs: [f([4, 5])],
    build: (x) => op.slice(x, [1, 0], [3, -1]),
    reference: (x) => ref.slice(x, [1, 0], [3, -1]),
  },
  {
    name: "Slice strided dynamic",
    ops: ["Slice", "Range", "ScatterElements"],
    dtype: "f64",
    inputs: [f([3, 7], { dims: ["batch", "seq"] })],
    build: (x) => op.slice(x, [-1, 1], [-4, 100], [0, 1], [-1, 2]),
    reference: (x) => ref.slice(x, [-1, 1], [-4, 100], [0, 1], [-1, 2]),
  },
  {
    name: "Split",
    ops: ["Split"],
    dtype: "f64",
    inputs: [f([2, 5])],
    build: (x) => op.split(x, [2, 3], 1)[1],
    reference: (x) => ref.split(x, 1, [2, 3])[1],
  },
  {
    name: "Gather embedding",
    ops: ["Gather", "ScatterElements"],
    dtype: "f64",
    inputs: [f([6, 3]), ids([2, 3], [0, 5, 2, 2, 1, 0])],
    build: (w, i) => op.gather(w, i, 0),
    reference: (w, i) => ref.gather(w, i, 0),
  },
  {
    name: "Gather axis 1",
    ops: ["Gather"],
    dtype: "f64",
    inputs: [f([2, 4, 3]), ids([2], [3, -4])],
    build: (w, i) => op.gather(w, i, 1),
    reference: (w, i) => ref.gather(w, i, 1),
  },
  {
    name: "GatherElements",
    ops: ["GatherElements", "ScatterElements"],
    dtype: "f64",
    inputs: [f([2, 4]), ids([2, 3], [0, 3, 3, 1, 1, 2])],
    build: (x, i) => op.gatherElements(x, i, 1),
    reference: gatherElementsRef,
  },
  {
    name: "Where",
    ops: ["Where", "Greater"],
    dtype: "f64",
    inputs: [f([2, 3]), f([2, 3]), f([3])],
    build: (c, a, b) => op.where(op.greater(c, 0), a, b),
    reference: (c, a, b) => ref.where(ref.greater(c, 0), a, b),
  },
  {
    name: "Equal Less Greater",
    ops: ["Equal", "Less", "Greater", "Cast"],
    dtype: "f64",
    noGrad: true,
    inputs: [f([2, 3], { values: [1, 2, 3, 4, 5, 6] }), f([3], { values: [2, 2, 5] })],
    build: (a, b) =>
      op.add(
        op.cast(op.equal(a, b), "f64"),
        op.add(
          op.mul(op.cast(op.less(a, b), "f64"), 2),
          op.mul(op.cast(op.greater(a, b), "f64"), 4),
        ),
      ),
    reference: (a, b) =>
      ref.add(
        asF64(ref.equal(a, b)),
        ref.add(ref.mul(asF64(ref.less(a, b)), 2), ref.mul(asF64(ref.greater(a, b)), 4)),
      ),
  },
  {
    name: "Expand",
    ops: ["Expand"],
    dtype: "f64",
    inputs: [f([3, 1])],
    build: (x) => op.expand(x, [2, 3, 4]),
    reference: (x) => ref.expand(x, [2, 3, 4]),
  },
  {
    name: "Unsqueeze Squeeze",
    ops: ["Unsqueeze", "Squeeze"],
    dtype: "f64",
    inputs: [f([2, 1, 3])],
    build: (x) => op.unsqueeze(op.squeeze(x, [1]), [0, 3]),
    reference: (x) => ref.reshape(x, [1, 2, 3, 1]),
  },
  {
    name: "ReduceSum keepdims",
    ops: ["ReduceSum"],
    dtype: "f64",
    inputs: [f([2, 3, 4])],
    build: (x) => op.reduceSum(x, [1], true),
    reference: (x) => ref.sum(x, { axes: [1], keepdims: true }),
  },
  {
    name: "ReduceMean dynamic",
    ops: ["ReduceMean", "ReduceProd"],
    dtype: "f64",
    inputs: [f([2, 3, 4], { dims: ["batch", "seq", 4] })],
    build: (x) => op.reduceMean(x, [0, 1]),
    reference: (x) => ref.mean(x, { axes: [0, 1] }),
  },
  {
    name: "ReduceMax",
    ops: ["ReduceMax"],
    dtype: "f64",
    inputs: [f([3, 4])],
    build: (x) => op.reduceMax(x, [1]),
    reference: (x) => ref.max(x, { axes: [1] }),
  },
  {
    // f32 in, f64 inside: finite differences of an f32-rounded function would be steps.
    name: "Cast",
    ops: ["Cast"],
    dtype: "f32",
    inputs: [f([2, 3])],
    build: (x) => op.cast(op.mul(op.cast(x, "f64"), op.scalar(x.graph, "f64", 3)), "f32"),
    reference: (x) => ref.mul(x, 3),
  },
  {
    name: "Conv patch embedding",
    ops: ["Conv", "ConvTranspose"],
    dtype: "f32",
    inputs: [f([2, 3, 8, 8]), f([4, 3, 4, 4]), f([4])],
    build: (x, w, b) => op.conv(x, w, b, { strides: [4, 4] }),
    reference: (x, w, b) => convRef(x, w, b, 4, 0),
  },
  {
    name: "Conv strided padded",
    ops: ["Conv", "ConvTranspose"],
    dtype: "f32",
    inputs: [f([1, 2, 5, 5]), f([3, 2, 3, 3])],
    build: (x, w) => op.conv(x, w, null, { strides: [2, 2], pads: [1, 1, 1, 1] }),
    reference: (x, w) => convRef(x, w, null, 2, 1),
  },
  {
    name: "Trilu causal",
    ops: ["Trilu"],
    dtype: "f64",
    inputs: [f([2, 4, 4])],
    build: (x) => op.add(op.trilu(x, false), op.trilu(x, true, 2)),
    reference: (x) => ref.add(triluRef(x, false, 0), triluRef(x, true, 2)),
  },
  {
    name: "Causal mask from Range",
    ops: ["Range", "Less", "Where", "Softmax"],
    dtype: "f64",
    inputs: [f([3, 3])],
    build: (x) => {
      const g = x.graph;
      const pos = op.range(
        op.scalar(g, "i64", 0),
        op.scalar(g, "i64", 3),
        op.scalar(g, "i64", 1),
        3,
      );
      const future = op.less(op.unsqueeze(pos, [1]), op.unsqueeze(pos, [0]));
      return op.softmax(op.where(future, -1e9, x), -1);
    },
    reference: (x) =>
      ref.softmax(triluRef(ref.add(x, triluRef(ref.map(x, () => -1e9), true, 1)), false, 100), -1),
  },
  {
    name: "CumSum",
    ops: ["CumSum"],
    dtype: "f64",
    inputs: [f([2, 4])],
    build: (x) => op.add(op.cumSum(x, 1), op.cumSum(x, 0, true)),
    reference: (x) => ref.add(ref.cumsum(x, 1), ref.cumsum(x, 0, { reverse: true })),
  },
  {
    name: "TopK values",
    ops: ["TopK", "ScatterElements"],
    dtype: "f64",
    inputs: [f([2, 5])],
    build: (x) => op.topK(x, 2, -1)[0],
    reference: (x) => topKRef(x, 2),
  },
  {
    name: "ArgMax",
    ops: ["ArgMax"],
    dtype: "f64",
    noGrad: true,
    inputs: [f([2, 5])],
    build: (x) => op.cast(op.argMax(x, 1), "f64"),
    reference: (x) => asF64(ref.argmax(x, 1, false)),
  },
];

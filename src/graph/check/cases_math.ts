/**
 * Op-check cases (see `case.ts`) of elementwise ops, matrix products, einsum and
 * normalisations.
 *
 * @module
 */
import { storeNumbers, toNumbers } from "../../tensor/elements.ts";
import { shapeSize, type Tensor } from "../../tensor/tensor.ts";
import * as ref from "../../tensor/ops.ts";
import * as op from "../ops.ts";
import { f, type OpCase, unaryCase } from "./case.ts";

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

/** The cases of elementwise ops, products and normalisations. */
export const MATH_CASES: readonly OpCase[] = [
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
];

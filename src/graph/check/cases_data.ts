/**
 * Op-check cases (see `case.ts`) of data movement (reshape, slice, gather, …), comparisons,
 * reductions, convolution and the mask builders.
 *
 * @module
 */
import { storeNumbers, toNumbers } from "../../tensor/elements.ts";
import type { Tensor } from "../../tensor/tensor.ts";
import * as ref from "../../tensor/ops.ts";
import * as op from "../ops.ts";
import { asF64, f, ids, type OpCase } from "./case.ts";

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

/** The cases of data movement, comparisons, reductions, convolution and masks. */
export const DATA_CASES: readonly OpCase[] = [
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
    name: "Compress",
    ops: ["NonZero", "Squeeze", "Gather", "ScatterElements"],
    dtype: "f64",
    inputs: [
      f([5, 3], { dims: ["n", 3] }),
      { shape: [5], dims: ["n"], dtype: "bool", values: [1, 0, 1, 1, 0], noGrad: true },
    ],
    build: (x, c) => op.compress(x, c, 0, "kept"),
    reference: (x, c) => {
      const keep = [...toNumbers(c).keys()].filter((i) => toNumbers(c)[i] !== 0);
      return ref.gather(x, storeNumbers("i64", [keep.length], keep), 0);
    },
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

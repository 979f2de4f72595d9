/**
 * Host reference reductions, scans and normalisations (see `../ops.ts`).
 *
 * @module
 */
import type { DType } from "../dtype.ts";
import { storeNumbers, toNumbers } from "../elements.ts";
import { shapeSize, type Tensor } from "../tensor.ts";
import {
  broadcastMap,
  nanMax,
  nanMin,
  normAxis,
  requireFloat,
  type Shape,
  stridesOf,
} from "./common.ts";

// ---------------------------------------------------------------------------------------------
// Reductions and scans

/** Options of the reductions. */
export interface ReduceOptions {
  /** Axes to reduce (negative allowed); omitted: all axes; `[]`: none (numpy). */
  axes?: number | readonly number[];
  /** Keep reduced dims as size 1 (default false, numpy; ONNX's default is true). */
  keepdims?: boolean;
}

/** The float64 reduction of `v` (shape `shape`): reduced values in the keepdims shape. */
function reduceValues(
  v: Float64Array,
  shape: Shape,
  axes: readonly number[],
  init: number,
  combine: (acc: number, x: number) => number,
): { kept: number[]; values: Float64Array; map: Float64Array } {
  const kept = shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const map = broadcastMap(kept, shape);
  const values = new Float64Array(shapeSize(kept)).fill(init);
  for (let i = 0; i < v.length; i++) values[map[i]] = combine(values[map[i]], v[i]);
  return { kept, values, map };
}

function resolveAxes(x: Tensor, axes: ReduceOptions["axes"], op: string): number[] {
  if (axes === undefined) return x.shape.map((_, i) => i);
  const list = (typeof axes === "number" ? [axes] : axes).map((a) => normAxis(a, x.rank, op));
  if (new Set(list).size !== list.length) throw new Error(`${op}: repeated axis in [${list}]`);
  return list;
}

function reduce<D extends DType>(
  op: string,
  x: Tensor<D>,
  opts: ReduceOptions,
  init: number,
  combine: (acc: number, x: number) => number,
  finish: (acc: number, count: number) => number = (acc) => acc,
): Tensor<D> {
  const axes = resolveAxes(x, opts.axes, op);
  const { kept, values } = reduceValues(toNumbers(x), x.shape, axes, init, combine);
  const count = shapeSize(axes.map((a) => x.shape[a]));
  for (let i = 0; i < values.length; i++) values[i] = finish(values[i], count);
  const shape = opts.keepdims ? kept : x.shape.filter((_, i) => !axes.includes(i));
  return storeNumbers(x.dtype, shape, values);
}

/** Sum over `axes` (see {@linkcode ReduceOptions}). */
export function sum<D extends DType>(x: Tensor<D>, opts: ReduceOptions = {}): Tensor<D> {
  return reduce("sum", x, opts, 0, (a, v) => a + v);
}
/** Mean over `axes` (see {@linkcode ReduceOptions}); NaN for an empty reduction. */
export function mean<D extends DType>(x: Tensor<D>, opts: ReduceOptions = {}): Tensor<D> {
  return reduce("mean", x, opts, 0, (a, v) => a + v, (a, n) => a / n);
}
/** Maximum over `axes`, NaN-propagating (see {@linkcode ReduceOptions}); -Inf when empty. */
export function max<D extends DType>(x: Tensor<D>, opts: ReduceOptions = {}): Tensor<D> {
  return reduce("max", x, opts, -Infinity, nanMax);
}
/** Minimum over `axes`, NaN-propagating (see {@linkcode ReduceOptions}); +Inf when empty. */
export function min<D extends DType>(x: Tensor<D>, opts: ReduceOptions = {}): Tensor<D> {
  return reduce("min", x, opts, Infinity, nanMin);
}

/**
 * ONNX ArgMax: the index (i64) of the first maximum along `axis` (a NaN counts as the
 * maximum, as in numpy). `keepdims` defaults to true as in ONNX.
 */
export function argmax(x: Tensor, axis = 0, keepdims = true): Tensor<"i64"> {
  const a = normAxis(axis, x.rank, "argmax");
  if (x.shape[a] === 0) throw new Error(`argmax: axis ${axis} is empty`);
  const kept = x.shape.map((d, i) => (i === a ? 1 : d));
  const map = broadcastMap(kept, x.shape), stride = stridesOf(x.shape)[a];
  const v = toNumbers(x),
    best = new Float64Array(shapeSize(kept)),
    at = new Float64Array(best.length);
  best.fill(NaN);
  const seen = new Uint8Array(best.length);
  for (let i = 0; i < v.length; i++) {
    const j = map[i], b = best[j];
    if (!seen[j] || (b === b && (v[i] > b || v[i] !== v[i]))) {
      seen[j] = 1;
      best[j] = v[i];
      at[j] = Math.floor(i / stride) % x.shape[a];
    }
  }
  return storeNumbers("i64", keepdims ? kept : x.shape.filter((_, i) => i !== a), at);
}

/** ONNX CumSum along `axis`; `exclusive` leaves out the current element, `reverse` runs backwards. */
export function cumsum<D extends DType>(
  x: Tensor<D>,
  axis: number,
  { exclusive = false, reverse = false }: { exclusive?: boolean; reverse?: boolean } = {},
): Tensor<D> {
  const a = normAxis(axis, x.rank, "cumsum");
  const kept = x.shape.map((d, i) => (i === a ? 1 : d));
  const map = broadcastMap(kept, x.shape);
  const v = toNumbers(x), acc = new Float64Array(shapeSize(kept)), out = new Float64Array(v.length);
  for (let k = 0; k < v.length; k++) {
    const i = reverse ? v.length - 1 - k : k, j = map[i];
    out[i] = exclusive ? acc[j] : acc[j] + v[i];
    acc[j] += v[i];
  }
  return storeNumbers(x.dtype, x.shape, out);
}

// ---------------------------------------------------------------------------------------------
// Normalisation

function softmaxParts(x: Tensor, axis: number, op: string) {
  requireFloat(x, op);
  const a = normAxis(axis, x.rank, op);
  const v = toNumbers(x);
  const m = reduceValues(v, x.shape, [a], -Infinity, nanMax);
  const shifted = v.map((e, i) => e - m.values[m.map[i]]);
  const s = reduceValues(shifted.map(Math.exp), x.shape, [a], 0, (acc, e) => acc + e);
  return { shifted, sums: s.values, map: m.map };
}

/** ONNX Softmax (opset 13): `exp(x - max) / sum(exp(x - max))` along `axis` (default -1). */
export function softmax<D extends DType>(x: Tensor<D>, axis = -1): Tensor<D> {
  const { shifted, sums, map } = softmaxParts(x, axis, "softmax");
  return storeNumbers(x.dtype, x.shape, shifted.map((e, i) => Math.exp(e) / sums[map[i]]));
}

/** ONNX LogSoftmax (opset 13): `x - max - log(sum(exp(x - max)))` along `axis` (default -1). */
export function logSoftmax<D extends DType>(x: Tensor<D>, axis = -1): Tensor<D> {
  const { shifted, sums, map } = softmaxParts(x, axis, "logSoftmax");
  return storeNumbers(x.dtype, x.shape, shifted.map((e, i) => e - Math.log(sums[map[i]])));
}

/**
 * ONNX LayerNormalization: normalises over dims `axis..rank-1` with the biased variance,
 * `(x - mean) / sqrt(var + eps) * w + b`; `w` and `b` broadcast to `x` (usually the shape
 * `x.shape[axis:]`). `b` may be omitted.
 */
export function layerNorm<D extends DType>(
  x: Tensor<D>,
  w: Tensor<D>,
  b?: Tensor<D>,
  axis = -1,
  eps = 1e-5,
): Tensor<D> {
  requireFloat(x, "layerNorm");
  const a = normAxis(axis, x.rank, "layerNorm");
  const axes = x.shape.map((_, i) => i).filter((i) => i >= a);
  const n = shapeSize(x.shape.slice(a));
  const v = toNumbers(x);
  const mu = reduceValues(v, x.shape, axes, 0, (acc, e) => acc + e);
  const centered = v.map((e, i) => e - mu.values[mu.map[i]] / n);
  const sq = reduceValues(centered.map((e) => e * e), x.shape, axes, 0, (acc, e) => acc + e);
  const vw = toNumbers(w), mw = broadcastMap(w.shape, x.shape);
  const vb = b ? toNumbers(b) : undefined, mb = b ? broadcastMap(b.shape, x.shape) : undefined;
  const out = centered.map((e, i) =>
    (e / Math.sqrt(sq.values[mu.map[i]] / n + eps)) * vw[mw[i]] + (vb ? vb[mb![i]] : 0)
  );
  return storeNumbers(x.dtype, x.shape, out);
}

/**
 * Host reference shape ops (see `../ops.ts`): reshape, transpose, slice, concat, split, expand,
 * gather, where; elements are copied bit for bit for every dtype.
 *
 * @module
 */
import { allocate, type DType, type DTypeArrays } from "../dtype.ts";
import { toNumbers } from "../elements.ts";
import { shapeSize, Tensor } from "../tensor.ts";
import {
  broadcastMap,
  broadcastShapes,
  fmt,
  indexMap,
  normAxis,
  pick,
  type Shape,
  type Storage,
  stridesOf,
} from "./common.ts";

// ---------------------------------------------------------------------------------------------
// Shape ops

/**
 * ONNX Reshape: one dim may be -1 (inferred); a 0 copies the input's dim at that position
 * unless `allowZero` (then 0 is a zero-size dim, numpy style).
 */
export function reshape<D extends DType>(x: Tensor<D>, shape: Shape, allowZero = false): Tensor<D> {
  const dims = shape.map((d, i) => (d === 0 && !allowZero ? x.shape[i] : d));
  if (dims.some((d) => d === undefined || !Number.isInteger(d) || d < -1)) {
    throw new Error(`reshape: invalid target shape ${fmt(shape)} for input ${fmt(x.shape)}`);
  }
  const unknown = dims.indexOf(-1);
  if (unknown !== dims.lastIndexOf(-1)) {
    throw new Error(`reshape: more than one -1 in ${fmt(shape)}`);
  }
  if (unknown >= 0) {
    const known = shapeSize(dims.filter((_, i) => i !== unknown));
    if (known === 0 || x.size % known !== 0) {
      throw new Error(`reshape: cannot infer -1 in ${fmt(shape)} for ${x.size} elements`);
    }
    dims[unknown] = x.size / known;
  }
  if (shapeSize(dims) !== x.size) {
    throw new Error(`reshape: ${fmt(x.shape)} (${x.size} elements) cannot become ${fmt(shape)}`);
  }
  return new Tensor(x.dtype, dims, x.data.slice() as DTypeArrays[D]);
}

/** Permutes dims: output dim `i` is input dim `perm[i]` (default: reversed, like numpy `.T`). */
export function transpose<D extends DType>(x: Tensor<D>, perm?: readonly number[]): Tensor<D> {
  const p = perm ?? x.shape.map((_, i) => x.rank - 1 - i);
  if (p.length !== x.rank || [...p].sort((a, b) => a - b).some((v, i) => v !== i)) {
    throw new Error(`transpose: perm [${p}] is not a permutation of the ${x.rank} dims`);
  }
  const st = stridesOf(x.shape);
  const shape = p.map((a) => x.shape[a]);
  return pick(x, shape, indexMap(shape, (d, i) => i * st[p[d]]));
}

/**
 * ONNX Slice (numpy `x[start:end:step]` per axis): negative starts/ends count from the end,
 * out-of-range values clamp, steps may be negative (never 0). `axes` defaults to
 * `0..starts.length-1`, `steps` to 1.
 *
 * @example
 * ```ts
 * import { fromArray } from "../create.ts";
 * import { slice } from "../ops.ts";
 * const y = slice(fromArray([0, 1, 2, 3, 4]), [-1], [-10], [0], [-2]); // [4, 2, 0]
 * if (y.data[1] !== 2) throw new Error("slice");
 * ```
 */
export function slice<D extends DType>(
  x: Tensor<D>,
  starts: readonly number[],
  ends: readonly number[],
  axes?: readonly number[],
  steps?: readonly number[],
): Tensor<D> {
  const ax = axes ?? starts.map((_, i) => i);
  if (
    ends.length !== starts.length || ax.length !== starts.length ||
    (steps && steps.length !== starts.length)
  ) {
    throw new Error(`slice: starts, ends, axes and steps must have the same length`);
  }
  const begin = new Array<number>(x.rank).fill(0);
  const step = new Array<number>(x.rank).fill(1);
  const shape = [...x.shape];
  const seen = new Set<number>();
  ax.forEach((axis, k) => {
    const a = normAxis(axis, x.rank, "slice");
    if (seen.has(a)) throw new Error(`slice: axis ${axis} repeated`);
    seen.add(a);
    const dim = x.shape[a], s = steps?.[k] ?? 1;
    if (s === 0 || !Number.isInteger(s)) {
      throw new Error(`slice: step for axis ${axis} must be a non-zero integer`);
    }
    let lo = starts[k] < 0 ? starts[k] + dim : starts[k];
    let hi = ends[k] < 0 ? ends[k] + dim : ends[k];
    if (s > 0) {
      lo = Math.min(Math.max(lo, 0), dim);
      hi = Math.min(Math.max(hi, 0), dim);
    } else {
      lo = Math.min(Math.max(lo, 0), dim - 1);
      hi = Math.min(Math.max(hi, -1), dim - 1);
    }
    begin[a] = lo;
    step[a] = s;
    shape[a] = Math.max(0, Math.ceil((hi - lo) / s));
  });
  const st = stridesOf(x.shape);
  return pick(x, shape, indexMap(shape, (d, i) => (begin[d] + i * step[d]) * st[d]));
}

/** Joins tensors of one dtype along `axis`; all other dims must match. */
export function concat<D extends DType>(tensors: readonly Tensor<D>[], axis: number): Tensor<D> {
  if (tensors.length === 0) throw new Error("concat: no tensors");
  const first = tensors[0];
  const a = normAxis(axis, first.rank, "concat");
  for (const t of tensors) {
    if (
      t.dtype !== first.dtype || t.rank !== first.rank ||
      t.shape.some((d, i) => i !== a && d !== first.shape[i])
    ) {
      throw new Error(
        `concat: ${t.dtype}${fmt(t.shape)} does not match ${first.dtype}${
          fmt(first.shape)
        } on axis ${axis}`,
      );
    }
  }
  const shape = [...first.shape];
  shape[a] = tensors.reduce((n, t) => n + t.shape[a], 0);
  const outer = shapeSize(first.shape.slice(0, a)), inner = shapeSize(first.shape.slice(a + 1));
  const out = allocate(first.dtype, shapeSize(shape)) as unknown as Storage;
  let pos = 0;
  for (let o = 0; o < outer; o++) {
    for (const t of tensors) {
      const block = t.shape[a] * inner, src = t.data as unknown as Storage;
      for (let i = 0; i < block; i++) out[pos++] = src[o * block + i];
    }
  }
  return new Tensor(first.dtype, shape, out as unknown as DTypeArrays[D]);
}

/**
 * Splits along `axis` into pieces of the given sizes (summing to the dim), or into `parts`
 * equal pieces (the last one smaller when the dim does not divide, as ONNX Split-18).
 */
export function split<D extends DType>(
  x: Tensor<D>,
  axis: number,
  sizes: number | readonly number[],
): Tensor<D>[] {
  const a = normAxis(axis, x.rank, "split");
  const dim = x.shape[a];
  let parts: number[];
  if (typeof sizes === "number") {
    if (!Number.isInteger(sizes) || sizes < 1) {
      throw new Error(`split: parts must be an integer >= 1`);
    }
    const size = Math.ceil(dim / sizes);
    parts = Array.from({ length: sizes }, (_, i) => Math.max(0, Math.min(size, dim - i * size)));
  } else parts = [...sizes];
  if (parts.reduce((s, n) => s + n, 0) !== dim || parts.some((n) => n < 0)) {
    throw new Error(`split: sizes [${parts}] do not add up to dim ${dim} of axis ${axis}`);
  }
  let start = 0;
  return parts.map((n) => slice(x, [start], [start += n], [a]));
}

/** ONNX Expand: broadcasts `x` with `shape` (numpy rules in both directions). */
export function expand<D extends DType>(x: Tensor<D>, shape: Shape): Tensor<D> {
  const out = broadcastShapes(x.shape, shape);
  return pick(x, out, broadcastMap(x.shape, out));
}

/**
 * ONNX Gather: picks entries of `x` along `axis` by `indices` (i32/i64, negative counts from
 * the end). Output shape: `x.shape[:axis] + indices.shape + x.shape[axis+1:]`.
 */
export function gather<D extends DType>(x: Tensor<D>, indices: Tensor, axis = 0): Tensor<D> {
  if (indices.dtype !== "i32" && indices.dtype !== "i64") {
    throw new Error(`gather: indices must be i32 or i64, got ${indices.dtype}`);
  }
  const a = normAxis(axis, x.rank, "gather");
  const dim = x.shape[a];
  const idx = toNumbers(indices).map((k) => {
    if (k < -dim || k >= dim) {
      throw new Error(`gather: index ${k} out of range for dim ${dim} of axis ${axis}`);
    }
    return k < 0 ? k + dim : k;
  });
  const outer = shapeSize(x.shape.slice(0, a)), inner = shapeSize(x.shape.slice(a + 1));
  const map = new Float64Array(outer * idx.length * inner);
  let pos = 0;
  for (let o = 0; o < outer; o++) {
    for (const k of idx) for (let r = 0; r < inner; r++) map[pos++] = (o * dim + k) * inner + r;
  }
  return pick(x, [...x.shape.slice(0, a), ...indices.shape, ...x.shape.slice(a + 1)], map);
}

/** `cond ? a : b` elementwise with three-way broadcasting; `cond` is bool, `a` and `b` one dtype. */
export function where<D extends DType>(cond: Tensor, a: Tensor<D>, b: Tensor<D>): Tensor<D> {
  if (cond.dtype !== "bool") throw new Error(`where: condition must be bool, got ${cond.dtype}`);
  if (a.dtype !== b.dtype) {
    throw new Error(`where: branches differ in dtype (${a.dtype} vs ${b.dtype})`);
  }
  const shape = broadcastShapes(cond.shape, a.shape, b.shape);
  const mc = broadcastMap(cond.shape, shape),
    ma = broadcastMap(a.shape, shape),
    mb = broadcastMap(b.shape, shape);
  const out = allocate(a.dtype, shapeSize(shape)) as unknown as Storage;
  const sa = a.data as unknown as Storage, sb = b.data as unknown as Storage;
  for (let i = 0; i < out.length; i++) out[i] = cond.data[mc[i]] ? sa[ma[i]] : sb[mb[i]];
  return new Tensor(a.dtype, shape, out as unknown as DTypeArrays[D]);
}

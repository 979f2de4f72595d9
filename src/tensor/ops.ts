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
import { allocate, type DType, type DTypeArrays, isFloat } from "./dtype.ts";
import { storeNumbers, toNumbers } from "./elements.ts";
import { shapeSize, Tensor } from "./tensor.ts";

export { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from "./half.ts";

type Shape = readonly number[];
/** A typed array seen as plain indexed storage, for dtype-agnostic element copies. */
type Storage = { [i: number]: number | bigint; readonly length: number };

const fmt = (s: Shape) => `[${s.join(", ")}]`;

/** Row-major strides of `shape`, in elements. */
export function stridesOf(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    s[d] = acc;
    acc *= shape[d];
  }
  return s;
}

/** Resolves a possibly negative `axis` of a rank-`rank` tensor; throws naming `op` if out of range. */
export function normAxis(axis: number, rank: number, op: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(axis) || a < 0 || a >= rank) {
    throw new Error(`${op}: axis ${axis} out of range for rank ${rank}`);
  }
  return a;
}

/** The numpy broadcast of `shapes` (right-aligned; each dim equal or 1); throws if incompatible. */
export function broadcastShapes(...shapes: Shape[]): number[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const d = rank - s.length + i, dim = s[i];
      if (dim === out[d] || dim === 1) continue;
      if (out[d] !== 1) {
        throw new Error(`shapes ${shapes.map(fmt).join(", ")} cannot be broadcast together`);
      }
      out[d] = dim;
    }
  }
  return out;
}

/** For each element of `outShape`, the flat offset of its source in a broadcast `inShape`. */
function broadcastMap(inShape: Shape, outShape: Shape): Float64Array {
  const offset = outShape.length - inShape.length;
  if (offset < 0 || inShape.some((d, i) => d !== 1 && d !== outShape[i + offset])) {
    throw new Error(`shape ${fmt(inShape)} cannot be broadcast to ${fmt(outShape)}`);
  }
  const inStrides = stridesOf(inShape);
  return indexMap(
    outShape,
    (d, i) => (d < offset || inShape[d - offset] === 1) ? 0 : i * inStrides[d - offset],
  );
}

/** For each element of `shape`, the sum over dims `d` of `term(d, index_d)`. */
function indexMap(shape: Shape, term: (d: number, i: number) => number): Float64Array {
  const n = shapeSize(shape);
  const map = new Float64Array(n);
  for (let flat = 0; flat < n; flat++) {
    let rem = flat, off = 0;
    for (let d = shape.length - 1; d >= 0; d--) {
      off += term(d, rem % shape[d]);
      rem = Math.floor(rem / shape[d]);
    }
    map[flat] = off;
  }
  return map;
}

/** A tensor of `shape` whose element `i` is element `map[i]` of `t` (bitwise copy). */
function pick<D extends DType>(t: Tensor<D>, shape: Shape, map: ArrayLike<number>): Tensor<D> {
  const out = allocate(t.dtype, map.length) as unknown as Storage;
  const src = t.data as unknown as Storage;
  for (let i = 0; i < map.length; i++) out[i] = src[map[i]];
  return new Tensor(t.dtype, shape, out as unknown as DTypeArrays[D]);
}

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
 * import { fromArray } from "./create.ts";
 * import { slice } from "./ops.ts";
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

// ---------------------------------------------------------------------------------------------
// Elementwise

/**
 * Applies `f` to every element (as a float64 number) and stores the result in `dtype`
 * (default: the input's dtype).
 */
export function map<D extends DType, O extends DType = D>(
  x: Tensor<D>,
  f: (v: number, i: number) => number,
  dtype: O = x.dtype as unknown as O,
): Tensor<O> {
  const v = toNumbers(x);
  for (let i = 0; i < v.length; i++) v[i] = f(v[i], i);
  return storeNumbers(dtype, x.shape, v);
}

/** An operand of a binary op: a tensor, or a number taken as a scalar of the other's dtype. */
export type Operand<D extends DType> = Tensor<D> | number;

/** Broadcasts `a` and `b` (same dtype) and combines elements with `f`, storing as `outDtype`. */
function binary<D extends DType>(
  op: string,
  a: Operand<D>,
  b: Operand<D>,
  f: (x: number, y: number, float: boolean) => number,
  outDtype?: DType,
): Tensor {
  const ta = typeof a === "number" ? undefined : a, tb = typeof b === "number" ? undefined : b;
  const dtype = ta?.dtype ?? tb?.dtype;
  if (dtype === undefined) throw new Error(`${op}: at least one operand must be a tensor`);
  if (ta && tb && ta.dtype !== tb.dtype) {
    throw new Error(`${op}: dtypes differ (${ta.dtype} vs ${tb.dtype})`);
  }
  const A = ta ?? storeNumbers(dtype, [], [a as number]),
    B = tb ?? storeNumbers(dtype, [], [b as number]);
  const shape = broadcastShapes(A.shape, B.shape);
  const ma = broadcastMap(A.shape, shape), mb = broadcastMap(B.shape, shape);
  const va = toNumbers(A), vb = toNumbers(B), out = new Float64Array(ma.length);
  const float = isFloat(dtype);
  for (let i = 0; i < out.length; i++) out[i] = f(va[ma[i]], vb[mb[i]], float);
  return storeNumbers(outDtype ?? dtype, shape, out);
}

/** NaN-propagating max/min (numpy `maximum`/`minimum`). */
const nanMax = (x: number, y: number) => (x !== x || y !== y ? NaN : Math.max(x, y));
const nanMin = (x: number, y: number) => (x !== x || y !== y ? NaN : Math.min(x, y));

/** `a + b` with broadcasting. */
export function add<D extends DType>(a: Operand<D>, b: Operand<D>): Tensor<D> {
  return binary("add", a, b, (x, y) => x + y) as Tensor<D>;
}
/** `a - b` with broadcasting. */
export function sub<D extends DType>(a: Operand<D>, b: Operand<D>): Tensor<D> {
  return binary("sub", a, b, (x, y) => x - y) as Tensor<D>;
}
/** `a * b` with broadcasting. */
export function mul<D extends DType>(a: Operand<D>, b: Operand<D>): Tensor<D> {
  return binary("mul", a, b, (x, y) => x * y) as Tensor<D>;
}
/** `a / b` with broadcasting; integer dtypes truncate toward zero (division by 0 stores 0). */
export function div<D extends DType>(a: Operand<D>, b: Operand<D>): Tensor<D> {
  return binary("div", a, b, (x, y, float) => (float ? x / y : Math.trunc(x / y))) as Tensor<D>;
}
/** `a ** b` with broadcasting (`Math.pow`). */
export function pow<D extends DType>(a: Operand<D>, b: Operand<D>): Tensor<D> {
  return binary("pow", a, b, (x, y) => Math.pow(x, y)) as Tensor<D>;
}
/** Elementwise maximum with broadcasting; NaN wins (numpy `maximum`, ONNX Max). */
export function maximum<D extends DType>(a: Operand<D>, b: Operand<D>): Tensor<D> {
  return binary("maximum", a, b, nanMax) as Tensor<D>;
}
/** Elementwise minimum with broadcasting; NaN wins (numpy `minimum`, ONNX Min). */
export function minimum<D extends DType>(a: Operand<D>, b: Operand<D>): Tensor<D> {
  return binary("minimum", a, b, nanMin) as Tensor<D>;
}
/** `a == b` → bool, with broadcasting (NaN is not equal to anything). */
export function equal<D extends DType>(a: Operand<D>, b: Operand<D>): Tensor<"bool"> {
  return binary("equal", a, b, (x, y) => Number(x === y), "bool") as Tensor<"bool">;
}
/** `a < b` → bool, with broadcasting. */
export function less<D extends DType>(a: Operand<D>, b: Operand<D>): Tensor<"bool"> {
  return binary("less", a, b, (x, y) => Number(x < y), "bool") as Tensor<"bool">;
}
/** `a > b` → bool, with broadcasting. */
export function greater<D extends DType>(a: Operand<D>, b: Operand<D>): Tensor<"bool"> {
  return binary("greater", a, b, (x, y) => Number(x > y), "bool") as Tensor<"bool">;
}

/**
 * The error function of `x` (a JS number), accurate to a few ulps in float64: the
 * positive-term series `erf(x) = 2/sqrt(pi) · exp(-x^2) · Σ 2^n x^(2n+1) / (1·3·…·(2n+1))`
 * for |x| < 6, and ±1 beyond (where erfc(x) < 2^-55).
 */
export function erfNumber(x: number): number {
  if (x !== x) return NaN;
  const ax = Math.abs(x);
  if (ax >= 6) return Math.sign(x);
  let term = ax, sum = ax;
  for (let n = 1; term > sum * 1e-17; n++) {
    term *= (2 * ax * ax) / (2 * n + 1);
    sum += term;
  }
  return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * Math.exp(-ax * ax) * sum;
}

/** The error function elementwise (float dtypes), computed in float64 by {@linkcode erfNumber}. */
export function erf<D extends DType>(x: Tensor<D>): Tensor<D> {
  requireFloat(x, "erf");
  return map(x, erfNumber);
}

function requireFloat(x: Tensor, op: string): void {
  if (!isFloat(x.dtype)) {
    throw new Error(`${op}: needs a float tensor, got ${x.dtype}${fmt(x.shape)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Matmul

/**
 * numpy/ONNX MatMul: the last two dims multiply as matrices, leading (batch) dims broadcast;
 * a 1-D `a` is a row vector and a 1-D `b` a column vector, and their dim is dropped from the
 * result. Accumulates in float64.
 */
export function matmul<D extends DType>(a: Tensor<D>, b: Tensor<D>): Tensor<D> {
  if (a.dtype !== b.dtype) throw new Error(`matmul: dtypes differ (${a.dtype} vs ${b.dtype})`);
  if (a.rank === 0 || b.rank === 0) throw new Error("matmul: operands must have at least 1 dim");
  const as = a.rank === 1 ? [1, a.shape[0]] : a.shape,
    bs = b.rank === 1 ? [b.shape[0], 1] : b.shape;
  const [M, K] = as.slice(-2), [K2, N] = bs.slice(-2);
  if (K !== K2) throw new Error(`matmul: inner dims differ: ${fmt(a.shape)} @ ${fmt(b.shape)}`);
  const batch = broadcastShapes(as.slice(0, -2), bs.slice(0, -2));
  const mapA = broadcastMap(as.slice(0, -2), batch), mapB = broadcastMap(bs.slice(0, -2), batch);
  const va = toNumbers(a), vb = toNumbers(b), out = new Float64Array(mapA.length * M * N);
  for (let p = 0; p < mapA.length; p++) {
    const oa = mapA[p] * M * K, ob = mapB[p] * K * N, oc = p * M * N;
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += va[oa + i * K + k] * vb[ob + k * N + j];
        out[oc + i * N + j] = s;
      }
    }
  }
  const shape = [...batch, ...(a.rank === 1 ? [] : [M]), ...(b.rank === 1 ? [] : [N])];
  return storeNumbers(a.dtype, shape, out);
}

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

// ---------------------------------------------------------------------------------------------
// Cast

/**
 * Converts to `dtype` by the storage rules of `storeNumbers` (floats to ints truncate toward
 * zero and wrap, to bool test non-zero, f64 to f16/bf16 rounds through float32 as ONNX
 * Runtime does). i64 to integer dtypes converts exactly with BigInt wrapping.
 */
export function cast<O extends DType>(x: Tensor, dtype: O): Tensor<O> {
  if (x.dtype === dtype) return new Tensor(dtype, x.shape, x.data.slice() as DTypeArrays[O]);
  if (x.dtype === "i64" && (dtype === "i32" || dtype === "u8" || dtype === "bool")) {
    const src = x.data as BigInt64Array, out = allocate(dtype, x.size);
    for (let i = 0; i < out.length; i++) {
      out[i] = dtype === "bool" ? Number(src[i] !== 0n) : Number(BigInt.asIntN(32, src[i]));
    }
    return new Tensor(dtype, x.shape, out as DTypeArrays[O]);
  }
  return storeNumbers(dtype, x.shape, toNumbers(x));
}

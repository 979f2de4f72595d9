/**
 * Ops that move data without arithmetic: reshape, transpose, concat, slice, split, gather,
 * compress, expand, squeeze/unsqueeze, scatter, and the mask builders range and trilu.
 *
 * @module
 */
import type { Dim, Value } from "../ir.ts";
import { addDims, broadcastShapes, normAxis, reshapeShape, showShape } from "../shape.ts";
import { dimOf, emit, i64s, scalar, shapeOf } from "./core.ts";

/**
 * Reshapes `x` to `dims`: static sizes, names of dims of `x` (resolved at run time), or one
 * `-1`.
 */
export function reshape(x: Value, dims: readonly Dim[]): Value {
  const out = reshapeShape(x.shape, dims);
  if (dims.every((d) => typeof d === "number")) {
    return emit("Reshape", [x, i64s(x.graph, dims as number[])], {}, x.dtype, out);
  }
  const parts = dims.map((d) => {
    if (typeof d === "number") return i64s(x.graph, [d]);
    return dimOf(x, x.shape.indexOf(d));
  });
  const shape = emit("Concat", parts, { axis: { int: 0 } }, "i64", [dims.length], {
    noGrad: true,
  });
  return emit("Reshape", [x, shape], {}, x.dtype, out);
}

/**
 * Reshapes `x` `[d0, ..., dn-2, k]` (static `k`, rank >= 2) to `[rows, k]`: every leading axis
 * merged into one, `rows` their product when they are static, else named after them
 * (`"batch*seq"`).
 */
export function flattenLeading(x: Value): Value {
  const k = x.shape[x.rank - 1];
  if (x.rank < 2 || typeof k !== "number") {
    throw new Error(`flattenLeading: ${x.describe()} needs rank >= 2 and a static last dim`);
  }
  const lead = x.shape.slice(0, -1);
  const rows = lead.every((d) => typeof d === "number")
    ? (lead as number[]).reduce((a, d) => a * d, 1)
    : lead.join("*");
  return emit("Reshape", [x, i64s(x.graph, [-1, k])], {}, x.dtype, [rows, k]);
}

/** Reshapes `x` to the runtime shape of `like` (same element count). */
export function reshapeLike(x: Value, like: Value): Value {
  return emit("Reshape", [x, shapeOf(like)], {}, x.dtype, like.shape);
}

/** Permutes the axes of `x` (reverses them when `perm` is omitted). */
export function transpose(x: Value, perm?: readonly number[]): Value {
  const p = perm ?? x.shape.map((_, i) => x.rank - 1 - i);
  if (p.length !== x.rank || [...p].sort((a, b) => a - b).some((v, i) => v !== i)) {
    throw new Error(`Transpose: perm [${p}] is not a permutation of rank ${x.rank}`);
  }
  return emit("Transpose", [x], { perm: { ints: p } }, x.dtype, p.map((i) => x.shape[i]));
}

/** Swaps the last two axes. */
export function transposeLast(x: Value): Value {
  const perm = x.shape.map((_, i) => i);
  [perm[x.rank - 2], perm[x.rank - 1]] = [perm[x.rank - 1], perm[x.rank - 2]];
  return transpose(x, perm);
}

/** Concatenates along `axis`; all other dims must agree. */
export function concat(xs: readonly Value[], axis: number): Value {
  if (xs.length === 0) throw new Error("Concat: needs at least one input");
  const a = normAxis("Concat", axis, xs[0].rank);
  let dim: Dim = 0;
  for (const x of xs) {
    if (x.rank !== xs[0].rank || x.dtype !== xs[0].dtype) {
      throw new Error(`Concat: ${x.describe()} does not match ${xs[0].describe()}`);
    }
    x.shape.forEach((d, i) => {
      if (i !== a && d !== xs[0].shape[i]) {
        throw new Error(`Concat: shapes ${xs.map((v) => showShape(v.shape)).join(", ")} differ`);
      }
    });
    dim = addDims(dim, x.shape[a]);
  }
  const shape = [...xs[0].shape];
  shape[a] = dim;
  return emit("Concat", xs, { axis: { int: a } }, xs[0].dtype, shape);
}

function sliceDim(d: Dim, start: number, end: number, step: number): Dim {
  if (typeof d !== "number") {
    if (step === 1 && start >= 0 && end >= 0 && end < 2 ** 31) return end - start;
    return `${d}[${start}:${end}:${step}]`;
  }
  const clampIndex = (i: number, lo: number, hi: number) =>
    Math.min(Math.max(i < 0 ? i + d : i, lo), hi);
  if (step > 0) {
    const s = clampIndex(start, 0, d);
    const e = clampIndex(end, 0, d);
    return Math.max(0, Math.ceil((e - s) / step));
  }
  const s = clampIndex(start, -1, d - 1);
  const e = clampIndex(end, -1, d - 1);
  return Math.max(0, Math.ceil((e - s) / step));
}

/**
 * ONNX `Slice` with constant starts/ends/axes/steps (numpy semantics, negative indices and
 * out-of-range ends clamp). On a dynamic dim a slice with non-negative start and end is taken
 * to have static length `end - start`.
 */
export function slice(
  x: Value,
  starts: readonly number[],
  ends: readonly number[],
  axes?: readonly number[],
  steps?: readonly number[],
): Value {
  const ax = (axes ?? starts.map((_, i) => i)).map((a) => normAxis("Slice", a, x.rank));
  const st = steps ?? ax.map(() => 1);
  if (starts.length !== ax.length || ends.length !== ax.length || st.length !== ax.length) {
    throw new Error("Slice: starts, ends, axes and steps must have the same length");
  }
  const shape = [...x.shape];
  ax.forEach((a, i) => {
    if (st[i] === 0) throw new Error("Slice: step 0");
    shape[a] = sliceDim(x.shape[a], starts[i], ends[i], st[i]);
  });
  const g = x.graph;
  return emit(
    "Slice",
    [x, i64s(g, starts), i64s(g, ends), i64s(g, ax), i64s(g, st)],
    {},
    x.dtype,
    shape,
  );
}

/** Splits `x` along `axis` into pieces of the given static sizes. */
export function split(x: Value, sizes: readonly number[], axis: number): Value[] {
  const a = normAxis("Split", axis, x.rank);
  const total = sizes.reduce((s, v) => s + v, 0);
  if (typeof x.shape[a] === "number" && x.shape[a] !== total) {
    throw new Error(
      `Split: sizes [${sizes}] do not add up to dim ${x.shape[a]} of ${x.describe()}`,
    );
  }
  const outs = sizes.map((s) => {
    const shape = [...x.shape];
    shape[a] = s;
    return { dtype: x.dtype, shape };
  });
  return x.graph.node("Split", [x, i64s(x.graph, sizes)], { axis: { int: a } }, outs);
}

/** Gathers slices of `x` along `axis` at integer `indices` (embedding lookup with axis 0). */
export function gather(x: Value, indices: Value, axis = 0): Value {
  const a = normAxis("Gather", axis, x.rank);
  if (indices.dtype !== "i64" && indices.dtype !== "i32") {
    throw new Error(`Gather: indices must be i64 or i32, got ${indices.describe()}`);
  }
  const shape = [...x.shape.slice(0, a), ...indices.shape, ...x.shape.slice(a + 1)];
  return emit("Gather", [x, indices], { axis: { int: a } }, x.dtype, shape);
}

/** ONNX `GatherElements`: `out[i][j] = x[indices[i][j]][j]` along `axis`. */
export function gatherElements(x: Value, indices: Value, axis: number): Value {
  const a = normAxis("GatherElements", axis, x.rank);
  if (indices.rank !== x.rank) {
    throw new Error(
      `GatherElements: indices ${indices.describe()} must have the rank of ${x.describe()}`,
    );
  }
  return emit("GatherElements", [x, indices], { axis: { int: a } }, x.dtype, indices.shape);
}

/**
 * The slices of `x` along `axis` where the 1-D bool `condition` is true, in order (ONNX
 * `Compress`), as a `Gather` of the indices `NonZero` finds, so gradients flow through
 * `Gather`'s rule. `count` names the result's dynamic size along `axis`. Reads only the
 * selected slices: on a large initializer this touches only their bytes.
 */
export function compress(x: Value, condition: Value, axis: number, count: string): Value {
  if (condition.rank !== 1 || condition.dtype !== "bool") {
    throw new Error(`Compress: condition ${condition.describe()} must be a 1-D bool`);
  }
  const a = normAxis("Compress", axis, x.rank);
  const nz = emit("NonZero", [condition], {}, "i64", [1, count], { noGrad: true });
  const index = emit("Squeeze", [nz, i64s(x.graph, [0])], {}, "i64", [count], { noGrad: true });
  return gather(x, index, a);
}

/** Broadcasts `x` to the static `shape`. */
export function expand(x: Value, shape: readonly number[]): Value {
  const out = broadcastShapes("Expand", x.shape, shape);
  return emit("Expand", [x, i64s(x.graph, shape)], {}, x.dtype, out);
}

/** Broadcasts `x` to the runtime shape of `like`. */
export function expandLike(x: Value, like: Value): Value {
  const out = broadcastShapes("Expand", x.shape, like.shape);
  return emit("Expand", [x, shapeOf(like)], {}, x.dtype, out);
}

/** Inserts size-1 axes at `axes` (positions in the output). */
export function unsqueeze(x: Value, axes: readonly number[]): Value {
  const rank = x.rank + axes.length;
  const ax = axes.map((a) => normAxis("Unsqueeze", a, rank)).sort((p, q) => p - q);
  const shape: Dim[] = [];
  let j = 0;
  for (let i = 0; i < rank; i++) shape.push(ax.includes(i) ? 1 : x.shape[j++]);
  return emit("Unsqueeze", [x, i64s(x.graph, ax)], {}, x.dtype, shape);
}

/** Removes the size-1 axes `axes`. */
export function squeeze(x: Value, axes: readonly number[]): Value {
  const ax = axes.map((a) => normAxis("Squeeze", a, x.rank));
  for (const a of ax) {
    if (x.shape[a] !== 1) throw new Error(`Squeeze: axis ${a} of ${x.describe()} is not 1`);
  }
  const shape = x.shape.filter((_, i) => !ax.includes(i));
  return emit("Squeeze", [x, i64s(x.graph, ax)], {}, x.dtype, shape);
}

/** ONNX `ScatterElements` with `reduction` (`"none"` or `"add"`) into `data` along `axis`. */
export function scatterElements(
  data: Value,
  indices: Value,
  updates: Value,
  axis: number,
  reduction: "none" | "add" = "none",
): Value {
  const a = normAxis("ScatterElements", axis, data.rank);
  const attrs = { axis: { int: a }, reduction: { string: reduction } };
  return emit("ScatterElements", [data, indices, updates], attrs, data.dtype, data.shape);
}

/** `[start, start + delta, …)` below `limit`, as ONNX `Range` over scalar values. */
export function range(start: Value, limit: Value, delta: Value, length: Dim): Value {
  return emit("Range", [start, limit, delta], {}, start.dtype, [length], { noGrad: true });
}

/** Keeps the upper (or lower) triangle of the last two axes, offset by diagonal `k`. */
export function trilu(x: Value, upper: boolean, k = 0): Value {
  return emit(
    "Trilu",
    [x, scalar(x.graph, "i64", k)],
    { upper: { int: upper ? 1 : 0 } },
    x.dtype,
    x.shape,
  );
}

/**
 * Reductions and scans: sums, means, maxima, arg-maxima, top-k, cumulative sums.
 *
 * @module
 */
import type { Dim, Value } from "../ir.ts";
import { normAxis } from "../shape.ts";
import { emit, i64s, requireFloat, scalar } from "./core.ts";

/** The shape left after reducing `axes` of `shape`. */
export function reducedShape(
  shape: readonly Dim[],
  axes: readonly number[],
  keepdims: boolean,
): Dim[] {
  const out: Dim[] = [];
  shape.forEach((d, i) => {
    if (!axes.includes(i)) out.push(d);
    else if (keepdims) out.push(1);
  });
  return out;
}

function reduce(
  op: string,
  x: Value,
  axes: readonly number[] | undefined,
  keepdims: boolean,
): Value {
  const ax = (axes ?? x.shape.map((_, i) => i)).map((a) => normAxis(op, a, x.rank));
  const shape = reducedShape(x.shape, ax, keepdims);
  const attrs = { keepdims: { int: keepdims ? 1 : 0 } };
  return emit(op, [x, i64s(x.graph, ax)], attrs, x.dtype, shape);
}

/** Sum over `axes` (all when omitted). */
export function reduceSum(x: Value, axes?: readonly number[], keepdims = false): Value {
  return reduce("ReduceSum", x, axes, keepdims);
}
/** Mean over `axes` (all when omitted). */
export function reduceMean(x: Value, axes?: readonly number[], keepdims = false): Value {
  requireFloat("ReduceMean", x);
  return reduce("ReduceMean", x, axes, keepdims);
}
/** Maximum over `axes` (all when omitted). */
export function reduceMax(x: Value, axes?: readonly number[], keepdims = false): Value {
  return reduce("ReduceMax", x, axes, keepdims);
}

/** Index of the maximum along `axis` (first on ties), as int64. */
export function argMax(x: Value, axis: number, keepdims = false): Value {
  const a = normAxis("ArgMax", axis, x.rank);
  const attrs = { axis: { int: a }, keepdims: { int: keepdims ? 1 : 0 } };
  return emit("ArgMax", [x], attrs, "i64", reducedShape(x.shape, [a], keepdims), { noGrad: true });
}

/** The `k` largest values along `axis` (sorted) and their int64 indices. */
export function topK(x: Value, k: number, axis = -1): [Value, Value] {
  const a = normAxis("TopK", axis, x.rank);
  const shape = [...x.shape];
  shape[a] = k;
  const attrs = { axis: { int: a }, largest: { int: 1 }, sorted: { int: 1 } };
  const [values, indices] = x.graph.node("TopK", [x, i64s(x.graph, [k])], attrs, [
    { dtype: x.dtype, shape },
    { dtype: "i64", shape },
  ]);
  return [values, indices];
}

/** Cumulative sum along `axis` (`reverse` sums from the end). */
export function cumSum(x: Value, axis: number, reverse = false): Value {
  const a = normAxis("CumSum", axis, x.rank);
  const attrs = { reverse: { int: reverse ? 1 : 0 } };
  return emit("CumSum", [x, scalar(x.graph, "i64", a)], attrs, x.dtype, x.shape);
}

/**
 * Building blocks shared by the op builders: emitting one node, lifting JS numbers to
 * constants, and the small shape-and-constant helpers every gradient rule needs.
 *
 * @module
 */
import { allocate, type DType, isFloat } from "../../tensor/dtype.ts";
import { storeNumbers } from "../../tensor/elements.ts";
import { Tensor } from "../../tensor/tensor.ts";
import type { Attr, Dim, Graph, Value } from "../ir.ts";
import { isStatic } from "../shape.ts";

/** A graph value or a JS number that becomes a constant of the other operand's dtype. */
export type ValueLike = Value | number;

/** Emits a node with one output and returns it. */
export function emit(
  op: string,
  inputs: readonly (Value | null)[],
  attrs: Record<string, Attr>,
  dtype: DType,
  shape: readonly Dim[],
  options: { noGrad?: boolean } = {},
): Value {
  const g = graphOf(inputs);
  return g.node(op, inputs, attrs, [{ dtype, shape }], options)[0];
}

/** The graph of the first non-null input; throws when none is given. */
export function graphOf(inputs: readonly (Value | ValueLike | null)[]): Graph {
  for (const v of inputs) if (v !== null && typeof v !== "number") return v.graph;
  throw new Error("an op needs at least one graph value among its inputs");
}

/** A scalar host tensor of `dtype` holding `value`. */
export function scalarTensor(dtype: DType, value: number): Tensor {
  if (dtype === "f16" || dtype === "bf16") return storeNumbers(dtype, [], [value]);
  const data = allocate(dtype, 1);
  if (data instanceof BigInt64Array) data[0] = BigInt(value);
  else data[0] = value;
  return new Tensor(dtype, [], data);
}

/** A scalar constant in `g`. */
export function scalar(g: Graph, dtype: DType, value: number): Value {
  return g.constant(scalarTensor(dtype, value));
}

/** A 1-D int64 constant (shapes, axes, pads). */
export function i64s(g: Graph, values: readonly number[]): Value {
  return g.constant(new Tensor("i64", [values.length], BigInt64Array.from(values.map(BigInt))));
}

/** Turns a number into a scalar constant of `like`'s dtype; passes values through. */
export function lift(x: ValueLike, like: Value): Value {
  return typeof x === "number" ? scalar(like.graph, like.dtype, x) : x;
}

/** Lifts the two operands of a binary op; at least one must be a graph value. */
export function liftPair(a: ValueLike, b: ValueLike): [Value, Value] {
  if (typeof a === "number" && typeof b === "number") {
    throw new Error("a binary op needs at least one graph value");
  }
  const like = (typeof a === "number" ? b : a) as Value;
  return [lift(a, like), lift(b, like)];
}

/** Throws unless `x` has a floating-point dtype. */
export function requireFloat(op: string, x: Value): void {
  if (!isFloat(x.dtype)) throw new Error(`${op}: needs a float tensor, got ${x.describe()}`);
}

/** Throws unless all values share one dtype. */
export function requireSameDtype(op: string, ...xs: Value[]): void {
  for (const x of xs) {
    if (x.dtype !== xs[0].dtype) {
      throw new Error(
        `${op}: dtypes differ: ${xs.map((v) => v.describe()).join(", ")}`,
      );
    }
  }
}

/** The runtime shape of `x` as an int64 vector (a constant when the shape is static). */
export function shapeOf(x: Value): Value {
  if (isStatic(x.shape)) return i64s(x.graph, x.shape);
  return emit("Shape", [x], {}, "i64", [x.rank], { noGrad: true });
}

/** The runtime size of dim `axis` of `x` as an int64 vector of one element. */
export function dimOf(x: Value, axis: number): Value {
  const d = x.shape[axis];
  if (typeof d === "number") return i64s(x.graph, [d]);
  return emit("Shape", [x], { start: { int: axis }, end: { int: axis + 1 } }, "i64", [1], {
    noGrad: true,
  });
}

/** A tensor of dtype `dtype` and symbolic `shape` (given at run time by `runtimeShape`). */
export function fill(
  dtype: DType,
  shape: readonly Dim[],
  runtimeShape: Value,
  value: number,
): Value {
  const attrs = { value: { tensor: oneElement(dtype, value) } };
  return emit("ConstantOfShape", [runtimeShape], attrs, dtype, shape, { noGrad: true });
}

function oneElement(dtype: DType, value: number): Tensor {
  const t = scalarTensor(dtype, value);
  return new Tensor(dtype, [1], t.data);
}

/** Zeros with the shape and dtype of `x`. */
export function zerosLike(x: Value): Value {
  return fill(x.dtype, x.shape, shapeOf(x), 0);
}

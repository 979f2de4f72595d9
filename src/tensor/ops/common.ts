/**
 * Shapes, strides, broadcasting, index maps and the NaN rules shared by the host reference ops
 * (`../ops.ts`).
 *
 * @module
 */
import { allocate, type DType, type DTypeArrays, isFloat } from "../dtype.ts";
import { shapeSize, Tensor } from "../tensor.ts";

/** A shape. */
export type Shape = readonly number[];
/** A typed array seen as plain indexed storage, for dtype-agnostic element copies. */
export type Storage = { [i: number]: number | bigint; readonly length: number };

/** `[2, 3]`, for error messages. */
export const fmt = (s: Shape): string => `[${s.join(", ")}]`;

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
export function broadcastMap(inShape: Shape, outShape: Shape): Float64Array {
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
export function indexMap(shape: Shape, term: (d: number, i: number) => number): Float64Array {
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
export function pick<D extends DType>(
  t: Tensor<D>,
  shape: Shape,
  map: ArrayLike<number>,
): Tensor<D> {
  const out = allocate(t.dtype, map.length) as unknown as Storage;
  const src = t.data as unknown as Storage;
  for (let i = 0; i < map.length; i++) out[i] = src[map[i]];
  return new Tensor(t.dtype, shape, out as unknown as DTypeArrays[D]);
}

/** NaN-propagating max/min (numpy `maximum`/`minimum`). */
export const nanMax = (x: number, y: number) => (x !== x || y !== y ? NaN : Math.max(x, y));
export const nanMin = (x: number, y: number) => (x !== x || y !== y ? NaN : Math.min(x, y));

/** Throws unless `x` has a float dtype. */
export function requireFloat(x: Tensor, op: string): void {
  if (!isFloat(x.dtype)) {
    throw new Error(`${op}: needs a float tensor, got ${x.dtype}${fmt(x.shape)}`);
  }
}

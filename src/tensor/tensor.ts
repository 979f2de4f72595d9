/**
 * The host tensor: a dtype, a shape and a typed array in row-major order.
 *
 * @module
 */
import { type DType, type DTypeArrays, DTYPES } from "./dtype.ts";
import { formatTensor } from "./format.ts";

/** Number of elements of a shape (1 for a scalar). */
export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * A dense row-major tensor on the host.
 *
 * @example
 * ```ts
 * import { Tensor } from "./tensor.ts";
 * const t = new Tensor("f32", [2, 2], new Float32Array([1, 2, 3, 4]));
 * if (t.size !== 4) throw new Error("size");
 * ```
 */
export class Tensor<D extends DType = DType> {
  /** Element type. */
  readonly dtype: D;
  /** Dimensions, outermost first. */
  readonly shape: readonly number[];
  /** Elements in row-major order. */
  readonly data: DTypeArrays[D];

  /** Wraps `data` (not copied); throws when its length does not match `shape`. */
  constructor(dtype: D, shape: readonly number[], data: DTypeArrays[D]) {
    if (!DTYPES.includes(dtype)) throw new Error(`unknown dtype ${JSON.stringify(dtype)}`);
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) {
        throw new Error(`invalid shape [${shape.join(", ")}]: dims must be integers >= 0`);
      }
    }
    if (data.length !== shapeSize(shape)) {
      throw new Error(
        `tensor data has ${data.length} elements but shape [${shape.join(", ")}] needs ${
          shapeSize(shape)
        }`,
      );
    }
    this.dtype = dtype;
    this.shape = Object.freeze([...shape]);
    this.data = data;
  }

  /** Number of elements. */
  get size(): number {
    return this.data.length;
  }

  /** Number of dimensions. */
  get rank(): number {
    return this.shape.length;
  }

  /** `Tensor f32[2, 3] [[1, 2, 3], [4, 5, 6]]`, previewed when big (see `formatTensor`). */
  toString(): string {
    return formatTensor(this);
  }

  /** Makes `console.log` and `Deno.inspect` print {@linkcode Tensor.toString}. */
  [Symbol.for("Deno.customInspect")](): string {
    return formatTensor(this);
  }
}

/**
 * Rows `[start, end)` of `t` along its first axis, as a new tensor (a copy).
 *
 * @example
 * ```ts
 * import { sliceRows, Tensor } from "./tensor.ts";
 * const t = sliceRows(new Tensor("f32", [3, 2], Float32Array.of(0, 1, 2, 3, 4, 5)), 1, 3);
 * if (t.shape.join() !== "2,2" || t.data[0] !== 2) throw new Error("sliceRows");
 * ```
 */
export function sliceRows<D extends DType>(t: Tensor<D>, start: number, end: number): Tensor<D> {
  const rows = t.shape[0];
  if (t.rank === 0 || !(Number.isInteger(start) && Number.isInteger(end))) {
    throw new Error(`sliceRows: rows [${start}, ${end}) of a tensor of shape [${t.shape}]`);
  }
  if (!(0 <= start && start <= end && end <= rows)) {
    throw new Error(
      `sliceRows: rows [${start}, ${end}) are outside the ${rows} rows of [${t.shape}]`,
    );
  }
  const row = t.size / Math.max(rows, 1);
  const data = t.data.slice(start * row, end * row) as DTypeArrays[D];
  return new Tensor(t.dtype, [end - start, ...t.shape.slice(1)], data);
}

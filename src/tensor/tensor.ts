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

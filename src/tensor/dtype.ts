/**
 * Element types of host tensors and graph values, and the typed arrays that hold them.
 *
 * @module
 */

/** Element type of a tensor. `f16` and `bf16` are stored as raw 16-bit patterns. */
export type DType = "f32" | "f64" | "f16" | "bf16" | "i64" | "i32" | "u8" | "bool";

/** The typed array that stores each {@linkcode DType}. */
export interface DTypeArrays {
  /** 32-bit floats. */
  f32: Float32Array;
  /** 64-bit floats. */
  f64: Float64Array;
  /** IEEE half floats, as raw bit patterns. */
  f16: Uint16Array;
  /** bfloat16, as raw bit patterns. */
  bf16: Uint16Array;
  /** 64-bit signed integers. */
  i64: BigInt64Array;
  /** 32-bit signed integers. */
  i32: Int32Array;
  /** 8-bit unsigned integers. */
  u8: Uint8Array;
  /** Booleans, one byte each (0 or 1). */
  bool: Uint8Array;
}

/** Any typed array that backs a tensor. */
export type TypedArray = DTypeArrays[DType];

/** All dtypes, in a fixed order. */
export const DTYPES: readonly DType[] = ["f32", "f64", "f16", "bf16", "i64", "i32", "u8", "bool"];

/** Bytes per element of each dtype. */
export const DTYPE_BYTES: Readonly<Record<DType, number>> = {
  f32: 4,
  f64: 8,
  f16: 2,
  bf16: 2,
  i64: 8,
  i32: 4,
  u8: 1,
  bool: 1,
};

/** True for the floating-point dtypes. */
export function isFloat(dtype: DType): boolean {
  return dtype === "f32" || dtype === "f64" || dtype === "f16" || dtype === "bf16";
}

/** The typed-array class of each dtype. */
const ARRAY_OF: { readonly [D in DType]: new (size: number) => DTypeArrays[D] } = {
  f32: Float32Array,
  f64: Float64Array,
  f16: Uint16Array,
  bf16: Uint16Array,
  i64: BigInt64Array,
  i32: Int32Array,
  u8: Uint8Array,
  bool: Uint8Array,
};

/** Allocates a zero-filled typed array of `size` elements for `dtype`. */
export function allocate<D extends DType>(dtype: D, size: number): DTypeArrays[D] {
  if (!Object.hasOwn(ARRAY_OF, dtype)) throw new Error(`unknown dtype ${JSON.stringify(dtype)}`);
  return new ARRAY_OF[dtype](size);
}

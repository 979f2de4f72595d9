/**
 * Reading and writing tensor elements as JS numbers, for every dtype. This is the one place
 * that decides how a number is stored in each dtype (the rules of {@linkcode storeNumbers}).
 *
 * @module
 */
import { allocate, type DType, type DTypeArrays } from "./dtype.ts";
import { f32ToBf16Bits, f32ToF16Bits } from "./half.ts";
import { decodeNumbers } from "./numbers.ts";
import { Tensor } from "./tensor.ts";

/**
 * The elements of `t` as float64 numbers: f16/bf16 decoded, i64 via `Number` (exact while
 * |x| < 2^53), bool as 0/1 (see `decodeNumbers`).
 */
export function toNumbers(t: Tensor): Float64Array {
  return decodeNumbers(t.dtype, t.data);
}

/**
 * Stores JS numbers as `dtype` and wraps them in a tensor of `shape`. Rules: f32 rounds to
 * nearest; f16/bf16 round to float32 first, then to nearest-even (as ONNX Runtime's Cast does);
 * integers truncate toward zero, then wrap (i32 modulo 2^32, u8 modulo 256, i64 modulo 2^64;
 * NaN and ±Inf store 0); bool stores 1 for any non-zero value, NaN included.
 */
export function storeNumbers<D extends DType>(
  dtype: D,
  shape: readonly number[],
  values: ArrayLike<number>,
): Tensor<D> {
  const n = values.length;
  const data = allocate(dtype, n);
  switch (dtype) {
    case "f32":
    case "f64":
      (data as Float32Array | Float64Array).set(values);
      break;
    case "f16":
      for (let i = 0; i < n; i++) data[i] = f32ToF16Bits(values[i]);
      break;
    case "bf16":
      for (let i = 0; i < n; i++) data[i] = f32ToBf16Bits(values[i]);
      break;
    case "i64": {
      const d = data as BigInt64Array;
      for (let i = 0; i < n; i++) d[i] = BigInt.asIntN(64, BigInt(finiteTrunc(values[i])));
      break;
    }
    case "i32":
    case "u8":
      for (let i = 0; i < n; i++) data[i] = finiteTrunc(values[i]);
      break;
    case "bool":
      for (let i = 0; i < n; i++) data[i] = values[i] !== 0 ? 1 : 0;
      break;
  }
  return new Tensor(dtype, shape, data as DTypeArrays[D]);
}

/** Truncates toward zero; NaN and ±Inf give 0. Large values wrap when stored in an int array. */
function finiteTrunc(x: number): number {
  return Number.isFinite(x) ? Math.trunc(x) : 0;
}

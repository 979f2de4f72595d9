/**
 * Decoding the elements of a typed array of any dtype to float64 numbers: the one place that
 * reads f16/bf16 bits, int64 and bool elements as JS numbers (`elements.ts` and `format.ts`
 * build on it).
 *
 * @module
 */
import type { DType, DTypeArrays } from "./dtype.ts";
import { bf16BitsToF32, f16BitsToF32 } from "./half.ts";

/**
 * The elements of `data` (stored as `dtype`) as float64 numbers: f16/bf16 decoded, i64 via
 * `Number` (exact while |x| < 2^53), bool as 0/1.
 *
 * @example
 * ```ts
 * import { decodeNumbers } from "./numbers.ts";
 * const x = decodeNumbers("i64", BigInt64Array.of(3n));
 * if (x[0] !== 3) throw new Error("decode");
 * ```
 */
export function decodeNumbers(dtype: DType, data: DTypeArrays[DType]): Float64Array {
  const out = new Float64Array(data.length);
  switch (dtype) {
    case "f16":
      for (let i = 0; i < out.length; i++) out[i] = f16BitsToF32(data[i] as number);
      break;
    case "bf16":
      for (let i = 0; i < out.length; i++) out[i] = bf16BitsToF32(data[i] as number);
      break;
    case "i64":
      for (let i = 0; i < out.length; i++) out[i] = Number(data[i]);
      break;
    default:
      out.set(data as ArrayLike<number>);
  }
  return out;
}

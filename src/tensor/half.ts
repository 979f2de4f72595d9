/**
 * Bit-level conversions between float32 and the 16-bit float formats (IEEE binary16 `f16`
 * and bfloat16 `bf16`), both rounding to nearest, ties to even.
 *
 * @module
 */

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/** The IEEE float32 bit pattern of `x` (rounded to float32 first). */
export function f32Bits(x: number): number {
  F32[0] = x;
  return U32[0];
}

/** The float32 value whose bit pattern is the unsigned 32-bit integer `bits`. */
export function f32FromBits(bits: number): number {
  U32[0] = bits >>> 0;
  return F32[0];
}

/**
 * Rounds `x` to float32, then to IEEE binary16, round-to-nearest-even, and returns the 16-bit
 * pattern. Overflow gives ±Inf, values below half the smallest subnormal give ±0, NaN stays a
 * (quiet) NaN.
 *
 * @example
 * ```ts
 * import { f32ToF16Bits } from "./half.ts";
 * if (f32ToF16Bits(1) !== 0x3c00) throw new Error("1.0 is 0x3c00");
 * ```
 */
export function f32ToF16Bits(x: number): number {
  const bits = f32Bits(x);
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  let mant = bits & 0x7fffff;
  if (exp === 0xff) return mant !== 0 ? sign | 0x7e00 | (mant >>> 13) : sign | 0x7c00;
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    return sign | roundShift(mant, shift);
  }
  return sign | roundShift((e << 23) | mant, 13);
}

/** `value >> shift` rounded to nearest, ties to even; a carry may propagate into the exponent. */
function roundShift(value: number, shift: number): number {
  const half = 1 << (shift - 1);
  const rem = value & ((1 << shift) - 1);
  let out = value >>> shift;
  if (rem > half || (rem === half && (out & 1) === 1)) out += 1;
  return out;
}

/**
 * The value of the IEEE binary16 bit pattern `bits` (exact as a float32 and a JS number).
 *
 * @example
 * ```ts
 * import { f16BitsToF32 } from "./half.ts";
 * if (f16BitsToF32(0xc000) !== -2) throw new Error("0xc000 is -2");
 * ```
 */
export function f16BitsToF32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant !== 0 ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/**
 * Rounds `x` to float32, then to bfloat16 (the top 16 bits of a float32) with
 * round-to-nearest-even, and returns the 16-bit pattern. NaN stays a quiet NaN.
 *
 * @example
 * ```ts
 * import { f32ToBf16Bits } from "./half.ts";
 * if (f32ToBf16Bits(1) !== 0x3f80) throw new Error("1.0 is 0x3f80");
 * ```
 */
export function f32ToBf16Bits(x: number): number {
  const bits = f32Bits(x);
  if ((bits & 0x7fffffff) > 0x7f800000) return (bits >>> 16) | 0x0040;
  return Math.floor((bits + 0x7fff + ((bits >>> 16) & 1)) / 0x10000) & 0xffff;
}

/** The value of the bfloat16 bit pattern `bits` (exact as a float32 and a JS number). */
export function bf16BitsToF32(bits: number): number {
  return f32FromBits((bits & 0xffff) << 16);
}

/**
 * Pretty printing of tensors: `Tensor f32[2, 3] [[1, 2, 3], [4, 5, 6]]`, with an ellipsis
 * preview for big tensors.
 *
 * @module
 */
import type { DType, DTypeArrays } from "./dtype.ts";
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from "./half.ts";
import { decodeNumbers } from "./numbers.ts";

/** What {@linkcode formatTensor} reads of a tensor (a `Tensor` is one). */
export interface Printable {
  /** Element type. */
  readonly dtype: DType;
  /** Dimensions, outermost first. */
  readonly shape: readonly number[];
  /** Elements in row-major order. */
  readonly data: DTypeArrays[DType];
}

/** Options of {@linkcode formatTensor}. */
export interface FormatOptions {
  /** Tensors with more elements are previewed (default 100). */
  maxItems?: number;
  /** Items kept at each end of every dim in a preview (default 3). */
  edgeItems?: number;
}

/** Rounds `x` to the precision of a float dtype. */
function roundTo(dtype: DType, x: number): number {
  switch (dtype) {
    case "f32":
      return Math.fround(x);
    case "f16":
      return f16BitsToF32(f32ToF16Bits(x));
    case "bf16":
      return bf16BitsToF32(f32ToBf16Bits(x));
    default:
      return x;
  }
}

/** The shortest decimal that reads back as the same `dtype` value. */
function formatNumber(dtype: DType, x: number): string {
  if (Object.is(x, -0)) return "-0";
  if (!Number.isFinite(x) || dtype === "f64") return String(x);
  for (let p = 1; p < 17; p++) {
    const y = Number(x.toPrecision(p));
    if (roundTo(dtype, y) === x) return String(y);
  }
  return String(x);
}

/**
 * Formats `t` as `Tensor <dtype>[<shape>] <values>` with nested brackets. Tensors with more
 * than `maxItems` elements show the first and last `edgeItems` of every dim around `...`.
 *
 * @example
 * ```ts
 * import { Tensor } from "./tensor.ts";
 * import { formatTensor } from "./format.ts";
 * const t = new Tensor("f32", [2, 3], new Float32Array([1, 2, 3, 4, 5, 6]));
 * if (formatTensor(t) !== "Tensor f32[2, 3] [[1, 2, 3], [4, 5, 6]]") throw new Error("format");
 * ```
 */
export function formatTensor(
  t: Printable,
  { maxItems = 100, edgeItems = 3 }: FormatOptions = {},
): string {
  const preview = t.data.length > maxItems;
  const rank = t.shape.length;
  const strides: number[] = [];
  for (let d = rank - 1, s = 1; d >= 0; s *= t.shape[d--]) strides[d] = s;
  const values = t.dtype === "i64" || t.dtype === "bool"
    ? undefined
    : decodeNumbers(t.dtype, t.data);
  const item = (i: number): string => {
    if (t.dtype === "i64") return String(t.data[i]);
    if (t.dtype === "bool") return t.data[i] ? "true" : "false";
    return formatNumber(t.dtype, values![i]);
  };
  const render = (d: number, offset: number): string => {
    if (d === rank) return item(offset);
    const n = t.shape[d];
    const parts: string[] = [];
    const cut = preview && n > 2 * edgeItems;
    for (let i = 0; i < n; i++) {
      if (cut && i === edgeItems) {
        parts.push("...");
        i = n - edgeItems - 1;
        continue;
      }
      parts.push(render(d + 1, offset + i * strides[d]));
    }
    return `[${parts.join(", ")}]`;
  };
  return `Tensor ${t.dtype}[${t.shape.join(", ")}] ${render(0, 0)}`;
}

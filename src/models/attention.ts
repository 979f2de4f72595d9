/**
 * Multi-head attention as every backbone here uses it: split heads, scaled dot products with
 * an additive mask, softmax over keys, weighted sum, merge heads. Projections stay with the
 * architectures (their weight names differ).
 *
 * @module
 */
import type { Value } from "../graph/ir.ts";
import * as op from "../graph/ops.ts";
import type { DType } from "../tensor/dtype.ts";

/** The most negative finite float32, which HF adds at masked attention positions. */
export const F32_MIN = -3.4028234663852886e38;

/** The most negative finite float16 (`torch.finfo(torch.float16).min`). */
export const F16_MIN = -65504;

/**
 * The value HF adds at masked attention positions of a model computing in `dtype`:
 * `torch.finfo(dtype).min` ({@linkcode F16_MIN} for f16, which {@linkcode F32_MIN} would
 * overflow to `-inf` and turn fully masked rows into NaN), {@linkcode F32_MIN} otherwise.
 */
export function maskMin(dtype: DType): number {
  return dtype === "f16" ? F16_MIN : F32_MIN;
}

/**
 * The dtype in which softmax and RMSNorm of a model computing in `dtype` run: f32 for the
 * half-precision dtypes (as HF upcasts them), `dtype` itself otherwise.
 */
export function stableDtype(dtype: DType): DType {
  return dtype === "f16" || dtype === "bf16" ? "f32" : dtype;
}

/** `[b, s, h·d] → [b, h, s, d]`. */
export function splitHeads(x: Value, heads: number): Value {
  const [b, s, width] = x.shape;
  if (typeof width !== "number" || width % heads !== 0) {
    throw new Error(
      `splitHeads: width ${width} of ${x.describe()} is not divisible by ${heads} heads`,
    );
  }
  return op.transpose(op.reshape(x, [b, s, heads, width / heads]), [0, 2, 1, 3]);
}

/** `[b, h, s, d] → [b, s, h·d]`. */
export function mergeHeads(x: Value): Value {
  const [b, h, s, d] = x.shape;
  return op.reshape(op.transpose(x, [0, 2, 1, 3]), [b, s, (h as number) * (d as number)]);
}

/** Options of {@linkcode attend}. */
export interface AttendOptions {
  /** Number of heads. */
  readonly heads: number;
  /** Score scale (default `1/sqrt(head_dim)`). */
  readonly scale?: number;
  /** Additive mask broadcastable to `[b, h, s_q, s_k]` (0 = keep, {@linkcode maskMin} = drop). */
  readonly mask?: Value | null;
}

/**
 * Attention of projected queries `[b, s_q, h·d]` over keys and values `[b, s_k, h·d]`, heads
 * concatenated in the result `[b, s_q, h·d_v]`.
 */
export function attend(q: Value, k: Value, v: Value, options: AttendOptions): Value {
  const [qh, kh, vh] = [q, k, v].map((x) => splitHeads(x, options.heads));
  return mergeHeads(attendHeads(qh, kh, vh, options));
}

/**
 * The core of {@linkcode attend} on queries, keys and values already split into heads
 * (`[…, s_q, d]`, `[…, s_k, d]`, `[…, s_k, d_v]`; leading dims broadcast): softmax of the
 * scaled scores plus `mask`, times the values. Decoders with a KV cache call it directly.
 *
 * Scores are computed in the dtype of the heads; the mask is added and the softmax taken in
 * {@linkcode stableDtype} (f32 for f16 heads, as HF's `softmax(…, dtype=torch.float32)`), and
 * the probabilities are cast back before they weight the values.
 */
export function attendHeads(
  qh: Value,
  kh: Value,
  vh: Value,
  options: Omit<AttendOptions, "heads"> = {},
): Value {
  const headDim = qh.shape[qh.rank - 1] as number;
  const raw = op.mul(op.matmul(qh, op.transposeLast(kh)), options.scale ?? 1 / Math.sqrt(headDim));
  let scores = op.cast(raw, stableDtype(raw.dtype));
  if (options.mask) scores = op.add(scores, op.cast(options.mask, scores.dtype));
  return op.matmul(op.cast(op.softmax(scores, -1), vh.dtype), vh);
}

/**
 * Scores of the LiveEdit tests (spec §6): teacher-forced token accuracy and argmax agreement;
 * logits at the real (unpadded) positions.
 *
 * @module
 */
import type { Prediction } from "../../../src/editors/api.ts";
import { toNumbers } from "../../../src/tensor/elements.ts";
import type { Tensor } from "../../../src/tensor/tensor.ts";

/** Fraction of target tokens predicted right. */
export function tokenAccuracy(predictions: readonly Prediction[]): number {
  let right = 0, all = 0;
  for (const p of predictions) {
    p.predicted.forEach((id, i) => {
      all++;
      if (id === p.target[i]) right++;
    });
  }
  return right / all;
}

/** Fraction of positions where `a`'s argmax equals `b`'s (same examples in the same order). */
export function agreement(a: readonly Prediction[], b: readonly Prediction[]): number {
  let same = 0, all = 0;
  a.forEach((p, j) => {
    p.predicted.forEach((id, i) => {
      all++;
      if (id === b[j].predicted[i]) same++;
    });
  });
  return same / all;
}

/**
 * The logits `[b, T, V]` at the positions where `attentionMask` `[b, T]` is 1, concatenated
 * (padding positions differ legitimately between batchings).
 */
export function realPositions(logits: Tensor, attentionMask: Tensor): Float32Array {
  const [b, T, V] = logits.shape;
  const mask = toNumbers(attentionMask), data = logits.data as Float32Array;
  const out: number[] = [];
  for (let i = 0; i < b * T; i++) if (mask[i] === 1) out.push(...data.subarray(i * V, (i + 1) * V));
  return Float32Array.from(out);
}

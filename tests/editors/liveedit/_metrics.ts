/**
 * Scores of the LiveEdit tests (spec §6): teacher-forced token accuracy and argmax agreement.
 *
 * @module
 */
import type { Prediction } from "../../../src/editors/api.ts";

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

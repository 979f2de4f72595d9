/**
 * The editing metrics of spec §6, on token ids:
 *
 * - {@linkcode tokenAccuracy}: teacher-forced token accuracy, the fraction of target positions
 *   whose argmax is the target token (Rel., T-Gen., M-Gen., portability).
 * - {@linkcode agreement}: the fraction of positions where the argmax after editing equals the
 *   argmax before editing (T-Loc., M-Loc.).
 * - {@linkcode greedyAccuracy}: next-token accuracy without teacher forcing: greedy decoding of
 *   `len(target)` tokens from the prompt, compared with the target position by position (a
 *   generation that stops early counts the missing positions as wrong).
 * - {@linkcode greedyAgreement}: the same for locality, against the pre-edit generation.
 *
 * @example
 * ```ts
 * import { agreement, greedyAccuracy, tokenAccuracy } from "./metrics.ts";
 * if (tokenAccuracy({ predicted: [5, 7, 9], target: [5, 8, 9] }) !== 2 / 3) throw new Error();
 * if (agreement([1, 2], [1, 3]) !== 0.5) throw new Error();
 * if (greedyAccuracy([4], [4, 6]) !== 0.5) throw new Error();
 * ```
 *
 * @module
 */
import type { Prediction } from "../editors/api.ts";

/** Teacher-forced token accuracy of one prediction. Throws for an empty or mismatched target. */
export function tokenAccuracy(prediction: Prediction): number {
  const { predicted, target } = prediction;
  if (target.length === 0) throw new Error("token accuracy: the target has no tokens");
  if (predicted.length !== target.length) {
    throw new Error(
      `token accuracy: ${predicted.length} predictions for ${target.length} target tokens`,
    );
  }
  return matches(predicted, target, target.length) / target.length;
}

/**
 * Locality: the fraction of positions where `after` (post-edit argmax) equals `before`
 * (pre-edit argmax). Throws when the lengths differ or are 0.
 */
export function agreement(after: readonly number[], before: readonly number[]): number {
  if (before.length === 0) throw new Error("locality: no positions to compare");
  if (after.length !== before.length) {
    throw new Error(`locality: ${after.length} positions after editing, ${before.length} before`);
  }
  return matches(after, before, before.length) / before.length;
}

/**
 * Next-token accuracy without teacher forcing: of the `target.length` positions, the fraction
 * where the greedy generation has the target's token (positions past the generation's end are
 * wrong; tokens past the target's length are ignored). Throws for an empty target.
 */
export function greedyAccuracy(generated: readonly number[], target: readonly number[]): number {
  if (target.length === 0) throw new Error("greedy accuracy: the target has no tokens");
  return matches(generated, target, Math.min(generated.length, target.length)) / target.length;
}

/**
 * Locality without teacher forcing: of the first `length` positions, the fraction where the
 * post-edit generation `after` and the pre-edit generation `before` agree (both having ended
 * counts as agreeing). Throws for `length` < 1.
 */
export function greedyAgreement(
  after: readonly number[],
  before: readonly number[],
  length: number,
): number {
  if (!Number.isSafeInteger(length) || length < 1) {
    throw new Error(`greedy locality: length must be an integer >= 1, got ${length}`);
  }
  let hits = 0;
  for (let i = 0; i < length; i++) if (after[i] === before[i]) hits++;
  return hits / length;
}

function matches(a: readonly number[], b: readonly number[], n: number): number {
  let hits = 0;
  for (let i = 0; i < n; i++) if (a[i] === b[i]) hits++;
  return hits;
}

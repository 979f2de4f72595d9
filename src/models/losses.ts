/**
 * The editing losses of LiveEdit on a language model's logits, in-graph and differentiable,
 * with the authors' formulas (`BaseVLLMForEdit.label_loss` and `logit_KL_loss`): both read the
 * last `L` positions of logits `[b, T, V]`, where `L` is the length of the label ids / masks
 * `[b, L]`, and average over the masked positions (`sum(mask)`, over the whole batch).
 *
 * @example
 * ```ts ignore
 * const loss = labelLoss(logits, labelIds, labelMasks); // scalar
 * const loc = logitKLLoss(editedLogits, originalLogits, labelMasks);
 * ```
 *
 * @module
 */
import type { Value } from "../graph/ir.ts";
import * as op from "../graph/ops.ts";

/** The last `like.shape[1]` positions of `logits` `[b, T, V]` (`like`: `[b, L]`). */
export function lastPositions(logits: Value, like: Value): Value {
  const g = logits.graph;
  const total = op.squeeze(op.dimOf(logits, 1), [0]);
  const count = op.squeeze(op.dimOf(like, 1), [0]);
  const rows = op.range(op.sub(total, count), total, op.scalar(g, "i64", 1), like.shape[1]);
  return op.gather(logits, rows, 1);
}

/** `sum(x · mask) / sum(mask)` with `mask` cast to `x`'s dtype. */
function maskedMean(x: Value, mask: Value): Value {
  const m = op.cast(mask, x.dtype);
  return op.div(op.reduceSum(op.mul(x, m)), op.reduceSum(m));
}

/**
 * Mean token cross-entropy of `labelIds` (int64 `[b, L]`) under the last `L` positions of
 * `logits` `[b, T, V]`, over the positions where `labelMasks` `[b, L]` is 1:
 * `-Σ mask · log softmax(logits)[label] / Σ mask`. A scalar.
 */
export function labelLoss(logits: Value, labelIds: Value, labelMasks: Value): Value {
  const logp = op.logSoftmax(lastPositions(logits, labelIds), -1);
  const picked = op.squeeze(op.gatherElements(logp, op.unsqueeze(labelIds, [2]), 2), [2]);
  return op.neg(maskedMean(picked, labelMasks));
}

/**
 * `KL(p₁ ‖ p₂)` per position, `Σ_v p₁ (log p₁ - log p₂)` with `p = softmax(logits)`, on the
 * last `L` positions of `logits1` (edited) and `logits2` (original) `[b, T, V]`, averaged over
 * the positions where `labelMasks` `[b, L]` is 1. A scalar.
 */
export function logitKLLoss(logits1: Value, logits2: Value, labelMasks: Value): Value {
  const l1 = lastPositions(logits1, labelMasks);
  const l2 = lastPositions(logits2, labelMasks);
  const logp1 = op.logSoftmax(l1, -1);
  const kl = op.reduceSum(op.mul(op.softmax(l1, -1), op.sub(logp1, op.logSoftmax(l2, -1))), [2]);
  return maskedMean(kl, labelMasks);
}

/**
 * Learning-rate schedules: functions from a step index to a learning rate.
 *
 * Step indices are zero-based: step `s` is the `(s+1)`-th optimiser update, so the first
 * update uses `schedule(0)` (`opt.step(grads, schedule(opt.stepCount))`).
 *
 * @module
 */

/** A learning rate as a function of the zero-based step index. */
export type Schedule = (step: number) => number;

/** Options of {@linkcode stepCut}. */
export interface StepCutOptions {
  /** The initial learning rate. */
  lr: number;
  /** Factor applied at each cut (e.g. 0.1). */
  rate: number;
  /** Step indices at which a cut takes effect: non-negative integers, strictly increasing. */
  cuts: readonly number[];
}

/**
 * Step-cut schedule: `lr × rate^k`, where `k` is the number of cuts `c` with `step >= c`.
 * A cut at 10000 ("×0.1 after step 10000") keeps `lr` for steps 0..9999 — the first 10000
 * updates — and uses `lr × 0.1` from step index 10000 on. This equals PyTorch's
 * `MultiStepLR(milestones=cuts, gamma=rate)` stepped once after every optimiser step.
 *
 * @example
 * ```ts
 * import { stepCut } from "./schedule.ts";
 * const lr = stepCut({ lr: 1e-4, rate: 0.1, cuts: [10000] });
 * if (lr(9999) !== 1e-4 || lr(10000) !== 1e-4 * 0.1) throw new Error("stepCut");
 * ```
 */
export function stepCut({ lr, rate, cuts }: StepCutOptions): Schedule {
  if (!Number.isFinite(lr) || lr < 0) {
    throw new Error(`stepCut: lr must be finite and >= 0, got ${lr}`);
  }
  if (!Number.isFinite(rate) || rate <= 0) {
    throw new Error(`stepCut: rate must be finite and > 0, got ${rate}`);
  }
  cuts.forEach((c, i) => {
    if (!Number.isSafeInteger(c) || c < 0 || (i > 0 && c <= cuts[i - 1])) {
      throw new Error(
        `stepCut: cuts must be strictly increasing integers >= 0, got [${cuts.join(", ")}]`,
      );
    }
  });
  const fixed = [...cuts];
  return (step: number) => {
    if (!Number.isSafeInteger(step) || step < 0) {
      throw new Error(`stepCut: step must be an integer >= 0, got ${step}`);
    }
    let k = 0;
    while (k < fixed.length && step >= fixed[k]) k++;
    return lr * rate ** k;
  };
}

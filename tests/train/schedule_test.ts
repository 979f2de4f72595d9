import assert from "node:assert/strict";
import { stepCut } from "../../src/train/schedule.ts";

Deno.test("stepCut: lr until the cut, lr*rate from step index cut on", () => {
  const lr = stepCut({ lr: 1e-4, rate: 0.1, cuts: [10000] });
  assert.equal(lr(0), 1e-4);
  assert.equal(lr(9999), 1e-4);
  assert.equal(lr(10000), 1e-4 * 0.1);
  assert.equal(lr(1_000_000), 1e-4 * 0.1);
});

Deno.test("stepCut: several cuts compound; no cuts is constant", () => {
  const lr = stepCut({ lr: 1, rate: 0.5, cuts: [2, 5] });
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6].map(lr), [1, 1, 0.5, 0.5, 0.5, 0.25, 0.25]);
  assert.equal(stepCut({ lr: 3e-4, rate: 0.1, cuts: [] })(123456), 3e-4);
  assert.equal(
    stepCut({ lr: 1, rate: 0.1, cuts: [0] })(0),
    0.1,
    "a cut at 0 applies from the first step",
  );
});

Deno.test("stepCut: invalid options and steps are rejected", () => {
  assert.throws(() => stepCut({ lr: 1, rate: 0.1, cuts: [5, 5] }), /strictly increasing/);
  assert.throws(
    () => stepCut({ lr: 1, rate: 0.1, cuts: [-1] }),
    /strictly increasing integers >= 0/,
  );
  assert.throws(() => stepCut({ lr: 1, rate: 0, cuts: [] }), /rate must be finite and > 0/);
  assert.throws(() => stepCut({ lr: NaN, rate: 0.1, cuts: [] }), /lr must be finite/);
  assert.throws(() => stepCut({ lr: 1, rate: 0.1, cuts: [] })(-1), /step must be an integer >= 0/);
});

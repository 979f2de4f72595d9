import assert from "node:assert/strict";
import {
  agreement,
  greedyAccuracy,
  greedyAgreement,
  tokenAccuracy,
} from "../../src/eval/metrics.ts";

Deno.test("tokenAccuracy: the fraction of target positions whose argmax is the target token", () => {
  // hand-computed: 3 of 4 right
  assert.equal(tokenAccuracy({ predicted: [11, 12, 99, 14], target: [11, 12, 13, 14] }), 0.75);
  assert.equal(tokenAccuracy({ predicted: [5], target: [5] }), 1);
  assert.equal(tokenAccuracy({ predicted: [4, 4, 4], target: [1, 2, 3] }), 0);
  assert.throws(() => tokenAccuracy({ predicted: [], target: [] }), /no tokens/);
  assert.throws(() => tokenAccuracy({ predicted: [1], target: [1, 2] }), /1 predictions for 2/);
});

Deno.test("agreement: locality is the fraction of positions where post-edit = pre-edit argmax", () => {
  // M-Loc of a 5-token answer whose 2nd and 5th argmax changed: 3/5
  assert.equal(agreement([7, 8, 9, 10, 11], [7, 0, 9, 10, 0]), 0.6);
  assert.equal(agreement([3, 3], [3, 3]), 1);
  assert.throws(() => agreement([1], [1, 2]), /1 positions after editing, 2 before/);
  assert.throws(() => agreement([], []), /no positions/);
});

Deno.test("greedyAccuracy: greedy tokens against the target; missing positions are wrong", () => {
  assert.equal(greedyAccuracy([1, 2, 3], [1, 2, 3]), 1);
  assert.equal(greedyAccuracy([1, 9, 3], [1, 2, 3]), 2 / 3);
  assert.equal(greedyAccuracy([1], [1, 2, 3, 4]), 0.25, "stopped early after one token");
  assert.equal(greedyAccuracy([1, 2, 3, 4, 5], [1, 2]), 1, "tokens past the target ignored");
  assert.throws(() => greedyAccuracy([1], []), /no tokens/);
});

Deno.test("greedyAgreement: post- vs pre-edit generations over the target's length", () => {
  assert.equal(greedyAgreement([1, 2, 3], [1, 2, 4], 3), 2 / 3);
  assert.equal(greedyAgreement([1], [1], 3), 1, "both ended after one token: agree");
  assert.equal(greedyAgreement([1, 5], [1], 2), 0.5, "one ended, the other did not");
  assert.throws(() => greedyAgreement([1], [1], 0), /length must be/);
});

import assert from "node:assert/strict";
import { allClose, assertClose, maxAbsDiff, relErr } from "../../src/tensor/compare.ts";
import { fromArray } from "../../src/tensor/create.ts";

Deno.test("maxAbsDiff: largest difference; NaN/Inf rules; shape check", () => {
  assert.equal(maxAbsDiff([1, 2, 3], [1, 2.5, 2]), 1);
  assert.equal(maxAbsDiff([NaN, Infinity], [NaN, Infinity]), 0);
  assert.equal(maxAbsDiff([NaN], [1]), Infinity);
  assert.equal(maxAbsDiff([Infinity], [-Infinity]), Infinity);
  assert.equal(maxAbsDiff([], []), 0);
  assert.throws(
    () => maxAbsDiff(fromArray([[1, 2]]), fromArray([1, 2])),
    /shapes differ: \[1, 2\] vs \[2\]/,
  );
  assert.equal(maxAbsDiff(fromArray([[1, 2]]), [1, 3]), 1, "a flat array takes the tensor's shape");
});

Deno.test("relErr = max|a-b| / max(max|b|, 1e-30)", () => {
  assert.equal(relErr([1, 2, 4], [1, 2, 5]), 1 / 5);
  assert.equal(relErr([1e-3, 0], [0, 0]), 1e-3 / 1e-30);
  assert.equal(
    relErr([0.5, Infinity], [1, Infinity]),
    0.5,
    "infinite reference entries are skipped in max|b|",
  );
});

Deno.test("allClose: numpy formula |a-b| <= atol + rtol*|b|, broadcasting, NaN and Inf", () => {
  // The examples of numpy's allclose documentation.
  assert.ok(!allClose([1e10, 1e-7], [1.00001e10, 1e-8]));
  assert.ok(allClose([1e10, 1e-8], [1.00001e10, 1e-9]));
  assert.ok(!allClose([1e10, 1e-8], [1.0001e10, 1e-9]));
  assert.ok(!allClose([1e-8, 1e-7], [2e-8, 2e-7]));
  assert.ok(allClose([1, 2], [1.1, 2.2], { rtol: 0.1 }));
  assert.ok(!allClose([1, 2], [1.1, 2.3], { rtol: 0.1 }));
  assert.ok(allClose([Infinity, 1], [Infinity, 1]));
  assert.ok(!allClose([Infinity], [-Infinity]));
  assert.ok(!allClose([NaN], [NaN]));
  assert.ok(allClose([NaN], [NaN], { equalNan: true }));
  assert.ok(allClose(fromArray([[1, 1], [1, 1]]), fromArray([1, 1])), "broadcasts");
  // Asymmetric, like numpy: the tolerance scales with |b|.
  assert.ok(allClose([0], [1], { rtol: 1, atol: 0 }));
  assert.ok(!allClose([1], [0], { rtol: 1, atol: 0 }));
});

Deno.test("assertClose: passes within the bound; the error names label, bound, error, index", () => {
  assertClose(fromArray([[1, 2], [3, 4]]), [1, 2, 3, 4.000001], 1e-6, "ok");
  assert.throws(
    () => assertClose(fromArray([[1, 2], [3, 4.5]]), [1, 2, 3, 4], 1e-3, "layer 3 output"),
    (e: Error) =>
      e.message.includes("layer 3 output") && e.message.includes("1.000e-3") &&
      e.message.includes("1.250e-1") && e.message.includes("index [1, 1]") &&
      e.message.includes("actual 4.5, expected 4"),
  );
  assert.throws(() => assertClose([1, 2], [1], 1, "sizes"), /sizes: shapes differ/);
});

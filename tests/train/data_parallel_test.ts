import assert from "node:assert/strict";
import { combineReplicas, replicaSlices } from "../../src/train/data_parallel.ts";
import { Tensor } from "../../src/tensor/tensor.ts";

Deno.test("replicaSlices: contiguous, covering, sizes differ by at most one; no empty slice", () => {
  assert.deepEqual(replicaSlices(8, 2), [{ start: 0, end: 4 }, { start: 4, end: 8 }]);
  assert.deepEqual(replicaSlices(5, 3), [
    { start: 0, end: 2 },
    { start: 2, end: 4 },
    { start: 4, end: 5 },
  ]);
  assert.deepEqual(replicaSlices(1, 4), [{ start: 0, end: 1 }], "a batch smaller than R");
  for (let size = 1; size <= 9; size++) {
    for (let r = 1; r <= 4; r++) {
      const s = replicaSlices(size, r);
      assert.equal(s[0].start, 0);
      assert.equal(s.at(-1)!.end, size);
      s.forEach((x, k) => {
        assert.ok(x.end > x.start);
        if (k > 0) assert.equal(x.start, s[k - 1].end);
      });
      const sizes = s.map((x) => x.end - x.start);
      assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1);
    }
  }
  assert.throws(() => replicaSlices(0, 2), /batch size must be an integer >= 1, got 0/);
  assert.throws(() => replicaSlices(4, 1.5), /replicas must be an integer >= 1/);
});

/** A mean over rows `values`, the naive reference: the slices' combination must equal it. */
function rowsMean(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

Deno.test("combineReplicas: slices' means weighted by their sizes are the whole batch's mean", () => {
  const rows = [0.5, 2, -1, 4, 3]; // per-row loss terms of a batch of 5
  const rowGrads = rows.map((v, i) => [v * 2, i]); // per-row gradients of a 2-element parameter
  const slices = replicaSlices(rows.length, 2); // [0, 3) and [3, 5)
  const results = slices.map(({ start, end }) => {
    const n = end - start;
    const g = [0, 1].map((j) => rowGrads.slice(start, end).reduce((a, r) => a + r[j], 0) / n);
    return {
      losses: [rowsMean(rows.slice(start, end))],
      grads: { w: new Tensor("f32", [2], Float32Array.from(g)) },
    };
  });
  const out = combineReplicas(slices, results);
  assert.ok(Math.abs(out.losses[0] - rowsMean(rows)) <= 1e-12);
  // the plain mean of the replicas' means would be wrong here (slices of 3 and 2)
  assert.ok(Math.abs((results[0].losses[0] + results[1].losses[0]) / 2 - rowsMean(rows)) > 0.1);
  const want = [0, 1].map((j) => rowsMean(rowGrads.map((r) => r[j])));
  out.grads.w.data.forEach((v, j) => assert.ok(Math.abs(v - want[j]) <= 1e-6, `${v} ${want[j]}`));
  assert.deepEqual(out.grads.w.shape, [2]);
});

Deno.test("combineReplicas: a fixed order, whatever order the results were made in; mismatches named", () => {
  const slices = replicaSlices(3, 3);
  const g = (v: number) => ({ w: new Tensor("f32", [1], Float32Array.of(v)) });
  const results = [0.1, 0.2, 0.3].map((v) => ({ losses: [v], grads: g(v) }));
  const a = combineReplicas(slices, results);
  // exactly the float64 sum in replica order, rounded to float32 once
  let sum = 0;
  for (const v of [0.1, 0.2, 0.3]) sum += (1 / 3) * v;
  assert.equal(a.losses[0], sum);
  assert.equal(a.grads.w.data[0], Math.fround(sum));
  assert.throws(
    () => combineReplicas(slices, results.slice(0, 2)),
    /2 results for 3 slices/,
  );
  assert.throws(
    () => combineReplicas(slices, [results[0], { losses: [1], grads: {} }, results[2]]),
    /replica 1's gradient 'w' is missing/,
  );
  assert.throws(
    () =>
      combineReplicas(slices, [
        results[0],
        { losses: [1], grads: { ...g(1), v: g(1).w } },
        results[2],
      ]),
    /replica 1 has a gradient 'v' replica 0 has not/,
  );
  assert.throws(
    () => combineReplicas(slices, [results[0], { losses: [1, 2], grads: g(1) }, results[2]]),
    /replica 1 has 2 losses, replica 0 1/,
  );
});

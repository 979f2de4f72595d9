import assert from "node:assert/strict";
import { Rng } from "../../src/tensor/rng.ts";

Deno.test("Rng: outputs match an independent C implementation of SplitMix32 + xoshiro128**", () => {
  // Reference values from a standalone C program (uint32 arithmetic) of the same algorithms.
  const a = new Rng(42);
  assert.deepEqual(
    Array.from({ length: 6 }, () => a.nextU32()),
    [2837322924, 2689157697, 135565847, 3108665369, 1018650268, 4203423032],
  );
  assert.equal(a.uniform(), 0.97933903044413106);
  const b = new Rng(2 ** 40 + 7);
  assert.deepEqual(
    Array.from({ length: 6 }, () => b.nextU32()),
    [1004282400, 659510513, 3328505585, 2517645420, 3983864475, 3141844256],
  );
  assert.equal(b.uniform(), 0.36411381242863472);
  // Published xoshiro128** outputs for the state {1, 2, 3, 4}.
  const c = Rng.fromState({ algorithm: "xoshiro128**", words: [1, 2, 3, 4] });
  assert.deepEqual(Array.from({ length: 4 }, () => c.nextU32()), [11520, 0, 5927040, 70819200]);
});

Deno.test("Rng: same seed same stream, different seeds differ", () => {
  const draw = (r: Rng) => [r.uniform(), r.normal(), r.int(1000), r.nextU32()];
  assert.deepEqual(draw(new Rng(5)), draw(new Rng(5)));
  assert.notDeepEqual(draw(new Rng(5)), draw(new Rng(6)));
  assert.notDeepEqual(draw(new Rng(5)), draw(new Rng(5 + 2 ** 32)), "high seed bits matter");
});

Deno.test("Rng: state save/restore through JSON resumes the exact stream", () => {
  const r = new Rng(123);
  for (let i = 0; i < 17; i++) r.normal();
  const saved = JSON.parse(JSON.stringify(r.state()));
  const rest = Array.from({ length: 50 }, () => r.normal());
  const back = Rng.fromState(saved);
  assert.deepEqual(Array.from({ length: 50 }, () => back.normal()), rest);
  assert.throws(
    () => Rng.fromState({ algorithm: "xoshiro128**", words: [0, 0, 0, 0] }),
    /invalid Rng state/,
  );
  assert.throws(
    () => Rng.fromState({ algorithm: "pcg", words: [1, 2, 3, 4] } as never),
    /invalid Rng state/,
  );
  assert.throws(() => new Rng(-1), /seed must be an integer/);
  assert.throws(() => new Rng(1.5), /seed must be an integer/);
});

Deno.test("Rng.fork: deterministic, independent of the parent's later draws", () => {
  const p1 = new Rng(9), p2 = new Rng(9);
  const c1 = p1.fork(), c2 = p2.fork();
  assert.deepEqual(c1.state(), c2.state());
  assert.notDeepEqual(c1.state(), p1.state());
  const xs = Array.from({ length: 10 }, () => c1.uniform());
  p2.uniform(); // the parent drawing more does not change the child
  assert.deepEqual(Array.from({ length: 10 }, () => c2.uniform()), xs);
  assert.notDeepEqual(xs, Array.from({ length: 10 }, () => p1.uniform()));
});

Deno.test("Rng: uniform and normal moments within 5 standard errors (n = 200k)", () => {
  const r = new Rng(2024), n = 200_000;
  let s = 0, s2 = 0, lo = 1, hi = 0;
  for (let i = 0; i < n; i++) {
    const u = r.uniform();
    s += u;
    lo = Math.min(lo, u);
    hi = Math.max(hi, u);
  }
  assert.ok(lo >= 0 && hi < 1);
  assert.ok(Math.abs(s / n - 0.5) < 5 * Math.sqrt(1 / 12 / n), `uniform mean ${s / n}`);
  s = 0;
  for (let i = 0; i < n; i++) {
    const z = r.normal();
    s += z;
    s2 += z * z;
  }
  const mean = s / n, variance = s2 / n - mean * mean;
  assert.ok(Math.abs(mean) < 5 / Math.sqrt(n), `normal mean ${mean}`);
  assert.ok(Math.abs(variance - 1) < 5 * Math.sqrt(2 / n), `normal variance ${variance}`);
});

Deno.test("Rng.int: range, chi-square uniformity, argument checks", () => {
  const r = new Rng(77), k = 10, n = 100_000, counts = new Array(k).fill(0);
  for (let i = 0; i < n; i++) counts[r.int(k)]++;
  const chi2 = counts.reduce((acc, c) => acc + (c - n / k) ** 2 / (n / k), 0);
  assert.ok(chi2 < 33.7, `chi2 ${chi2} (9 dof, p < 1e-4 at 33.7)`);
  assert.equal(r.int(1), 0);
  assert.ok(r.int(2 ** 32) < 2 ** 32);
  assert.throws(() => r.int(0), /1 <= n <= 2\^32/);
  assert.throws(() => r.int(2.5), /1 <= n <= 2\^32/);
});

Deno.test("Rng.shuffle: a permutation, deterministic per seed", () => {
  const a = new Rng(3).shuffle(Array.from({ length: 20 }, (_, i) => i));
  const b = new Rng(3).shuffle(Array.from({ length: 20 }, (_, i) => i));
  assert.deepEqual(a, b);
  assert.deepEqual([...a].sort((x, y) => x - y), Array.from({ length: 20 }, (_, i) => i));
  assert.notDeepEqual(a, Array.from({ length: 20 }, (_, i) => i));
});

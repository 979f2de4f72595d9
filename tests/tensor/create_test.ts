import assert from "node:assert/strict";
import {
  arange,
  fanIn,
  fromArray,
  full,
  kaimingNormal,
  kaimingUniform,
  linearBias,
  ones,
  rand,
  randn,
  zeros,
} from "../../src/tensor/create.ts";
import { Rng } from "../../src/tensor/rng.ts";
import type { Tensor } from "../../src/tensor/tensor.ts";

const vals = (t: Tensor) => Array.from(t.data as ArrayLike<number>);

/** Sample mean and (population) standard deviation. */
function moments(t: Tensor): { mean: number; std: number } {
  const v = vals(t);
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  return { mean, std: Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length) };
}

Deno.test("zeros/ones/full in several dtypes", () => {
  assert.deepEqual([zeros([2, 2]).dtype, vals(zeros([2, 2]))], ["f32", [0, 0, 0, 0]]);
  assert.deepEqual(vals(ones([3], "i32")), [1, 1, 1]);
  assert.deepEqual(vals(full([2], 1, "f16")), [0x3c00, 0x3c00]);
  assert.deepEqual(Array.from(full([2], 7, "i64").data), [7n, 7n]);
  assert.deepEqual(vals(full([], 2.5, "f64")), [2.5]);
});

Deno.test("arange: numpy lengths incl. fractional and negative steps", () => {
  assert.deepEqual(vals(arange(4)), [0, 1, 2, 3]);
  assert.deepEqual(vals(arange(1, 2, 0.25, "f64")), [1, 1.25, 1.5, 1.75]);
  assert.deepEqual(vals(arange(5, 0, -2, "i32")), [5, 3, 1]);
  assert.deepEqual(arange(3, 1).shape, [0]);
  assert.throws(() => arange(0, 1, 0), /non-zero/);
});

Deno.test("fromArray: nested inference, flat + shape, booleans, errors", () => {
  const t = fromArray([[[1, 2]], [[3, 4]]]);
  assert.deepEqual([t.shape, vals(t)], [[2, 1, 2], [1, 2, 3, 4]]);
  assert.deepEqual(fromArray(5).shape, []);
  assert.deepEqual(fromArray([]).shape, [0]);
  const f = fromArray([1, 2, 3, 4, 5, 6], [3, 2], "i64");
  assert.deepEqual([f.shape, Array.from(f.data)], [[3, 2], [1n, 2n, 3n, 4n, 5n, 6n]]);
  assert.deepEqual(vals(fromArray([true, false], "bool")), [1, 0]);
  assert.throws(() => fromArray([[1, 2], [3]]), /ragged array at \[1\]/);
  assert.throws(() => fromArray([1, 2, 3], [2, 2]), /do not fill shape \[2, 2\]/);
});

Deno.test("randn/rand: reproducible per seed, within the requested range", () => {
  assert.deepEqual(vals(randn([50], new Rng(1))), vals(randn([50], new Rng(1))));
  assert.notDeepEqual(vals(randn([50], new Rng(1))), vals(randn([50], new Rng(2))));
  const u = rand([10_000], new Rng(4), { low: -2, high: 3, dtype: "f64" });
  assert.equal(u.dtype, "f64");
  assert.ok(vals(u).every((x) => x >= -2 && x < 3));
  const z = randn([100_000], new Rng(8), { mean: 3, std: 0.5 });
  const m = moments(z);
  assert.ok(Math.abs(m.mean - 3) < 5 * 0.5 / Math.sqrt(1e5), `mean ${m.mean}`);
  assert.ok(Math.abs(m.std / 0.5 - 1) < 5 / Math.sqrt(2e5), `std ${m.std}`);
});

Deno.test("fanIn follows PyTorch: shape[1] * prod(shape[2:]), needs 2 dims", () => {
  assert.equal(fanIn([64, 32]), 32);
  assert.equal(fanIn([16, 8, 3, 3]), 72);
  assert.throws(() => fanIn([5]), /at least 2 dimensions/);
});

Deno.test("kaimingNormal: std sqrt(2 / fan_in) within 5 standard errors on 393k samples", () => {
  const shape = [512, 256, 3], n = 512 * 256 * 3, want = Math.sqrt(2 / 768);
  const w = kaimingNormal(shape, new Rng(31));
  const m = moments(w);
  // Std of the sample std is ~ std / sqrt(2n); of the mean, std / sqrt(n).
  assert.ok(Math.abs(m.std - want) < 5 * want / Math.sqrt(2 * n), `std ${m.std} vs ${want}`);
  assert.ok(Math.abs(m.mean) < 5 * want / Math.sqrt(n), `mean ${m.mean}`);
  const leaky = moments(kaimingNormal([1000, 200], new Rng(2), 1));
  assert.ok(Math.abs(leaky.std - 1 / Math.sqrt(200)) < 5 / Math.sqrt(200) / Math.sqrt(4e5));
});

Deno.test("kaimingUniform: bound gain*sqrt(3/fan_in); a = sqrt(5) gives 1/sqrt(fan_in)", () => {
  const fan = 300, n = 400 * fan;
  const w = kaimingUniform([400, fan], new Rng(12), Math.sqrt(5));
  const bound = 1 / Math.sqrt(fan); // sqrt(2/6) * sqrt(3/300)
  const v = vals(w), top = Math.max(...v.map(Math.abs));
  assert.ok(top <= Math.fround(bound) && top > 0.999 * bound, `max |w| ${top} vs ${bound}`);
  const m = moments(w), std = bound / Math.sqrt(3);
  // Var of a uniform's sample variance: (4/45) b^4 / n, so the sample std has sd ~ std*sqrt(0.2/n).
  assert.ok(Math.abs(m.std - std) < 5 * std * Math.sqrt(0.2 / n), `std ${m.std} vs ${std}`);
  const relu = vals(kaimingUniform([100, 50], new Rng(1)));
  const b0 = Math.sqrt(2) * Math.sqrt(3 / 50);
  assert.ok(Math.max(...relu.map(Math.abs)) <= b0 && Math.max(...relu.map(Math.abs)) > 0.99 * b0);
});

Deno.test("linearBias: U(-1/sqrt(fan_in), 1/sqrt(fan_in))", () => {
  const b = vals(linearBias([20_000], 64, new Rng(5)));
  const top = Math.max(...b.map(Math.abs));
  assert.ok(top <= 1 / 8 && top > 0.999 / 8, `max |b| ${top}`);
  assert.throws(() => linearBias([3], 0, new Rng(1)), /fan-in must be > 0/);
});

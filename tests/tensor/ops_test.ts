import assert from "node:assert/strict";
import { arange, fromArray } from "../../src/tensor/create.ts";
import { assertClose } from "../../src/tensor/compare.ts";
import {
  add,
  argmax,
  broadcastShapes,
  cast,
  concat,
  cumsum,
  div,
  equal,
  erf,
  erfNumber,
  expand,
  gather,
  greater,
  layerNorm,
  less,
  logSoftmax,
  map,
  matmul,
  max,
  maximum,
  mean,
  min,
  minimum,
  mul,
  pow,
  reshape,
  slice,
  softmax,
  split,
  sub,
  sum,
  transpose,
  where,
} from "../../src/tensor/ops.ts";
import type { Tensor } from "../../src/tensor/tensor.ts";

const vals = (t: Tensor) => Array.from(t.data as ArrayLike<number>);
const I64_MAX = 2 ** 63;

Deno.test("reshape: -1 inference, 0 copies a dim, allowZero, errors", () => {
  const x = reshape(arange(24), [2, 3, 4]);
  assert.deepEqual(reshape(x, [0, -1]).shape, [2, 12]);
  assert.deepEqual(reshape(x, [-1]).shape, [24]);
  assert.deepEqual(reshape(arange(0), [0, 5], true).shape, [0, 5]);
  assert.deepEqual(vals(reshape(x, [4, 6])), vals(x));
  assert.throws(() => reshape(x, [5, -1]), /cannot infer -1/);
  assert.throws(() => reshape(x, [-1, -1]), /more than one -1/);
  assert.throws(() => reshape(x, [7]), /cannot become/);
});

Deno.test("transpose: 2-D default and 3-D perm, hand-written", () => {
  const x = fromArray([[1, 2, 3], [4, 5, 6]]);
  const t = transpose(x);
  assert.deepEqual(t.shape, [3, 2]);
  assert.deepEqual(vals(t), [1, 4, 2, 5, 3, 6]);
  const y = reshape(arange(12, undefined, 1, "i64"), [2, 3, 2]);
  const z = transpose(y, [1, 0, 2]); // z[j][i][k] = y[i][j][k]
  assert.deepEqual(z.shape, [3, 2, 2]);
  assert.deepEqual(Array.from(z.data as BigInt64Array, Number), [
    0,
    1,
    6,
    7,
    2,
    3,
    8,
    9,
    4,
    5,
    10,
    11,
  ]);
  assert.throws(() => transpose(y, [0, 0, 1]), /not a permutation/);
});

Deno.test("slice: ONNX/numpy semantics with negative indices, steps and clamping", () => {
  const x = reshape(arange(24), [2, 3, 4]);
  // numpy x[:, ::-1, 1:3]
  const a = slice(x, [0, -1, 1], [I64_MAX, -I64_MAX, 3], [0, 1, 2], [1, -1, 1]);
  assert.deepEqual(a.shape, [2, 3, 2]);
  assert.deepEqual(vals(a), [9, 10, 5, 6, 1, 2, 21, 22, 17, 18, 13, 14]);
  // numpy x[-1:, -2::-2, ::3]
  const b = slice(x, [-1, -2, 0], [100, -100, 100], [0, 1, -1], [1, -2, 3]);
  assert.deepEqual(b.shape, [1, 1, 2]);
  assert.deepEqual(vals(b), [16, 19]);
  const c = slice(arange(5), [-1], [-10], [0], [-2]);
  assert.deepEqual(vals(c), [4, 2, 0]);
  assert.deepEqual(slice(arange(5), [3], [1]).shape, [0]);
  assert.throws(() => slice(arange(5), [0], [1], [0], [0]), /non-zero/);
  assert.throws(() => slice(arange(5), [0], [1], [1]), /axis 1 out of range/);
});

Deno.test("concat and split (sizes and equal parts)", () => {
  const a = fromArray([[1, 2], [3, 4]]), b = fromArray([[5], [6]]);
  const c = concat([a, b], -1);
  assert.deepEqual(c.shape, [2, 3]);
  assert.deepEqual(vals(c), [1, 2, 5, 3, 4, 6]);
  assert.deepEqual(vals(concat([a, a], 0)), [1, 2, 3, 4, 1, 2, 3, 4]);
  assert.throws(() => concat([a, fromArray([[1, 2, 3]])], 1), /does not match/);
  const [p, q] = split(c, 1, [2, 1]);
  assert.deepEqual(vals(p), [1, 2, 3, 4]);
  assert.deepEqual(vals(q), [5, 6]);
  const parts = split(arange(5), 0, 3); // ONNX-18: sizes 2, 2, 1
  assert.deepEqual(parts.map((t) => vals(t)), [[0, 1], [2, 3], [4]]);
  assert.throws(() => split(arange(5), 0, [2, 2]), /do not add up/);
});

Deno.test("broadcasting: add [2,1,3] + [4,1] against numpy", () => {
  const a = map(reshape(arange(6, undefined, 1, "f64"), [2, 1, 3]), (v) => v * 0.5 - 1);
  const b = map(reshape(arange(4, undefined, 1, "f64"), [4, 1]), (v) => v + 0.25);
  const c = add(a, b);
  assert.equal(c.dtype, "f64");
  assert.deepEqual(c.shape, [2, 4, 3]);
  // numpy: (np.arange(6).reshape(2,1,3)*0.5-1) + (np.arange(4).reshape(4,1)+0.25)
  assert.deepEqual(vals(c), [
    -0.75,
    -0.25,
    0.25,
    0.25,
    0.75,
    1.25,
    1.25,
    1.75,
    2.25,
    2.25,
    2.75,
    3.25,
    0.75,
    1.25,
    1.75,
    1.75,
    2.25,
    2.75,
    2.75,
    3.25,
    3.75,
    3.75,
    4.25,
    4.75,
  ]);
  assert.deepEqual(broadcastShapes([5, 1, 3], [4, 1], []), [5, 4, 3]);
  assert.throws(() => add(arange(3), arange(4)), /cannot be broadcast/);
  assert.throws(() => add(arange(3), arange(3, undefined, 1, "f64")), /dtypes differ/);
});

Deno.test("binary ops: hand-computed values, scalars, int division, NaN", () => {
  const a = fromArray([1, -2, 3]), b = fromArray([2, 4, -0.5]);
  assert.deepEqual(vals(sub(a, b)), [-1, -6, 3.5]);
  assert.deepEqual(vals(mul(a, 2)), [2, -4, 6]);
  assert.deepEqual(vals(div(1, b)), [0.5, 0.25, -2]);
  assert.deepEqual(vals(pow(a, 2)), [1, 4, 9]);
  assert.deepEqual(vals(div(fromArray([-7, 7, 5], "i32"), fromArray([2, 2, -3], "i32"))), [
    -3,
    3,
    -1,
  ]);
  assert.deepEqual(vals(maximum(fromArray([1, NaN, 3]), 2)).map(String), ["2", "NaN", "3"]);
  assert.deepEqual(vals(minimum(a, fromArray([[0], [5]]))), [0, -2, 0, 1, -2, 3]);
  const f32 = add(fromArray([0.1]), fromArray([0.2]));
  assert.equal(
    f32.data[0],
    Math.fround(Math.fround(0.1) + Math.fround(0.2)),
    "rounded once to f32",
  );
});

Deno.test("comparisons give bool; where broadcasts three ways", () => {
  const a = fromArray([1, 2, NaN]);
  const eq = equal(a, fromArray([1, 3, NaN]));
  assert.equal(eq.dtype, "bool");
  assert.deepEqual(vals(eq), [1, 0, 0]);
  assert.deepEqual(vals(less(a, 2)), [1, 0, 0]);
  assert.deepEqual(vals(greater(a, 1)), [0, 1, 0]);
  const w = where(fromArray([[true], [false]], "bool"), fromArray([1, 2]), fromArray(9, []));
  assert.deepEqual(w.shape, [2, 2]);
  assert.deepEqual(vals(w), [1, 2, 9, 9]);
  assert.throws(() => where(a, a, a), /must be bool/);
});

Deno.test("matmul: 2-D, vector cases and batched broadcasting against numpy", () => {
  const a = fromArray([[1, 2, 3], [4, 5, 6]]), b = fromArray([[1, 0], [0, 1], [1, 1]]);
  assert.deepEqual(vals(matmul(a, b)), [4, 5, 10, 11]);
  const v = fromArray([1, -2, 3]), m = reshape(arange(6), [3, 2]);
  const vm = matmul(v, m);
  assert.deepEqual(vm.shape, [2]);
  assert.deepEqual(vals(vm), [8, 10]);
  const mv = matmul(transpose(m), v);
  assert.deepEqual(mv.shape, [2]);
  assert.deepEqual(vals(mv), [8, 10]);
  const dot = matmul(v, v);
  assert.deepEqual(dot.shape, []);
  assert.deepEqual(vals(dot), [14]);
  const A = map(reshape(arange(12), [2, 1, 2, 3]), (x) => (x - 5) / 3);
  const B = map(reshape(arange(18), [3, 3, 2]), (x) => x * 0.5 - 4);
  const C = matmul(A, B);
  assert.deepEqual(C.shape, [2, 3, 2, 2]);
  // numpy float64 result of A @ B, cast to float32
  const want = [
    12.666666984558105,
    10.666666984558105,
    3.6666667461395264,
    3.1666667461395264,
    0.6666666865348816,
    -1.3333333730697632,
    0.6666666865348816,
    0.1666666716337204,
    -11.333333015441895,
    -13.333333015441895,
    -2.3333332538604736,
    -2.8333332538604736,
    -5.333333492279053,
    -4.333333492279053,
    -14.333333015441895,
    -11.833333015441895,
    0.6666666865348816,
    1.6666666269302368,
    0.6666666865348816,
    3.1666667461395264,
    6.666666507720947,
    7.666666507720947,
    15.666666984558105,
    18.16666603088379,
  ];
  assertClose(C, want, 1e-7, "batched matmul"); // inputs are f32-rounded thirds
  assert.throws(() => matmul(a, a), /inner dims differ/);
});

Deno.test("softmax and logSoftmax against numpy (f32, incl. a large logit)", () => {
  const s = fromArray([[1, 2, 3], [-1, 0, 1000]]);
  assertClose(
    softmax(s),
    [0.09003057330846786, 0.2447284758090973, 0.6652409434318542, 0, 0, 1],
    1e-7,
    "softmax",
  );
  assertClose(
    logSoftmax(s, 1),
    [-2.4076058864593506, -1.4076060056686401, -0.40760597586631775, -1001, -1000, 0],
    1e-7,
    "logSoftmax",
  );
  const col = softmax(fromArray([[0, 0], [Math.log(3), 0]]), 0);
  assertClose(col, [0.25, 0.5, 0.75, 0.5], 1e-7, "softmax axis 0");
  assert.throws(() => softmax(fromArray([1], "i32")), /needs a float tensor/);
});

Deno.test("reductions: sum/mean/max/min over axes with keepdims", () => {
  const x = fromArray([[1, 2, 3], [4, 5, 6]]);
  assert.deepEqual(vals(sum(x)), [21]);
  assert.deepEqual(sum(x).shape, []);
  const s0 = sum(x, { axes: 0 });
  assert.deepEqual([s0.shape, vals(s0)], [[3], [5, 7, 9]]);
  const m1 = mean(x, { axes: [-1], keepdims: true });
  assert.deepEqual([m1.shape, vals(m1)], [[2, 1], [2, 5]]);
  assert.deepEqual(vals(max(x, { axes: 1 })), [3, 6]);
  assert.deepEqual(vals(min(x, { axes: [0, 1], keepdims: true })), [1]);
  assert.deepEqual(min(x, { axes: [0, 1], keepdims: true }).shape, [1, 1]);
  assert.deepEqual(vals(sum(x, { axes: [] })), vals(x), "no axes: nothing reduced");
  assert.ok(Number.isNaN(vals(max(fromArray([1, NaN, 3])))[0]));
  assert.throws(() => sum(x, { axes: [1, -1] }), /repeated axis/);
});

Deno.test("argmax: first maximum, NaN wins, keepdims, i64 output", () => {
  const x = fromArray([[1, 5, 5], [7, NaN, 7]]);
  const a = argmax(x, 1);
  assert.equal(a.dtype, "i64");
  assert.deepEqual(a.shape, [2, 1]);
  assert.deepEqual(Array.from(a.data), [1n, 1n]);
  assert.deepEqual(Array.from(argmax(x, 0, false).data), [1n, 1n, 1n]);
  assert.deepEqual(Array.from(argmax(fromArray([3, 1, 3, 2])).data), [0n]);
});

Deno.test("cast: truncation, wrapping, bool, exact i64, half precision", () => {
  const x = fromArray([-2.7, 2.7, 300, NaN]);
  assert.deepEqual(vals(cast(x, "i32")), [-2, 2, 300, 0]);
  assert.deepEqual(vals(cast(x, "u8")), [254, 2, 44, 0]);
  assert.deepEqual(vals(cast(x, "bool")), [1, 1, 1, 1]);
  assert.deepEqual(vals(cast(fromArray([0, -0, 0.5]), "bool")), [0, 0, 1]);
  const big = fromArray([0], "i64");
  (big.data as BigInt64Array)[0] = 2n ** 40n + 5n;
  assert.deepEqual(vals(cast(big, "i32")), [5], "low 32 bits");
  assert.deepEqual(vals(cast(fromArray([1, 65520, 2 ** -25 * 3]), "f16")), [
    0x3c00,
    0x7c00,
    0x0002,
  ]);
  assert.deepEqual(vals(cast(cast(fromArray([1.5, -3]), "bf16"), "f32")), [1.5, -3]);
  assert.deepEqual(Array.from(cast(fromArray([3.9, -3.9]), "i64").data), [3n, -3n]);
});

Deno.test("gather: negative and 2-D indices along an inner axis", () => {
  const x = fromArray([[1, 2, 3], [4, 5, 6]]);
  const g = gather(x, fromArray([[2, -3], [1, 1]], "i64"), 1);
  assert.deepEqual(g.shape, [2, 2, 2]);
  assert.deepEqual(vals(g), [3, 1, 2, 2, 6, 4, 5, 5]);
  assert.deepEqual(vals(gather(x, fromArray([1], "i32"))), [4, 5, 6]);
  assert.throws(() => gather(x, fromArray([3], "i32"), 1), /out of range/);
});

Deno.test("cumsum: inclusive, exclusive+reverse against numpy", () => {
  const c = reshape(arange(1, 7), [2, 3]);
  assert.deepEqual(vals(cumsum(c, 1)), [1, 3, 6, 4, 9, 15]);
  assert.deepEqual(vals(cumsum(c, -1, { exclusive: true, reverse: true })), [5, 3, 0, 11, 6, 0]);
  assert.deepEqual(vals(cumsum(c, 0)), [1, 2, 3, 5, 7, 9]);
});

Deno.test("expand: bidirectional broadcast (ONNX Expand)", () => {
  const e = expand(fromArray([[1], [2]]), [1, 3]);
  assert.deepEqual(e.shape, [2, 3]);
  assert.deepEqual(vals(e), [1, 1, 1, 2, 2, 2]);
  assert.deepEqual(expand(fromArray([1, 2]), [2, 1, 1]).shape, [2, 1, 2]);
});

Deno.test("layerNorm against numpy (biased variance, eps 1e-5)", () => {
  const x = fromArray([[1, 2, 3, 4], [2, -2, 0.5, 10]]);
  const y = layerNorm(x, fromArray([1, 0.5, 2, -1]), fromArray([0, 1, 0, 0.1]));
  assertClose(
    y,
    [
      -1.3416354656219482,
      0.7763940691947937,
      0.8944236040115356,
      -1.2416354417800903,
      -0.13915754854679108,
      0.4851170778274536,
      -0.9462713599205017,
      -1.542059063911438,
    ],
    1e-7,
    "layerNorm",
  );
  // Over the last two dims, no bias: every [2, 2] block has mean 0 and unit variance.
  const z = layerNorm(reshape(arange(8), [2, 2, 2]), fromArray([[1, 1], [1, 1]]), undefined, 1, 0);
  assertClose(
    z,
    [-1.3416407, -0.4472136, 0.4472136, 1.3416407, -1.3416407, -0.4472136, 0.4472136, 1.3416407],
    1e-6,
    "layerNorm 2 axes",
  );
});

Deno.test("erf: Python math.erf values to 1e-15 relative, and derivative by finite differences", () => {
  const ref: [number, number][] = [
    [0.1, 0.1124629160182849],
    [0.5, 0.5204998778130465],
    [1, 0.8427007929497149],
    [1.5, 0.9661051464753108],
    [2, 0.9953222650189527],
    [2.5, 0.999593047982555],
    [3, 0.9999779095030014],
    [4, 0.9999999845827421],
    [5.5, 0.9999999999999927],
    [-0.3, -0.3286267594591274],
    [1e-8, 1.1283791670955126e-8],
  ];
  for (const [x, want] of ref) {
    const got = erfNumber(x);
    assert.ok(Math.abs(got - want) <= 1e-15 * Math.abs(want), `erf(${x}) = ${got}, want ${want}`);
  }
  assert.equal(erfNumber(7), 1);
  assert.equal(erfNumber(-Infinity), -1);
  assert.ok(Number.isNaN(erfNumber(NaN)));
  // d/dx erf = 2/sqrt(pi) exp(-x^2). Central differences: truncation ~h^2/6 |f'''| <= 1e-6 d,
  // rounding ~eps/h ~ 2e-12 absolute.
  for (let x = -4; x <= 4; x += 0.37) {
    const h = 1e-4, fd = (erfNumber(x + h) - erfNumber(x - h)) / (2 * h);
    const d = (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x);
    assert.ok(Math.abs(fd - d) <= 1e-6 * d + 5e-12, `erf'(${x}): ${fd} vs ${d}`);
  }
  const t = erf(fromArray([0.5, -1]));
  assert.deepEqual(vals(t), [Math.fround(0.5204998778130465), Math.fround(-0.8427007929497149)]);
});

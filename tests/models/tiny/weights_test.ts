import assert from "node:assert/strict";
import { tinyDims } from "../../../src/models/tiny/configs.ts";
import { initTensor, tinyWeights, tinyWeightSpecs } from "../../../src/models/tiny/weights.ts";
import { Rng } from "../../../src/tensor/rng.ts";

/** Sample mean and standard deviation. */
function moments(x: ArrayLike<number>): { mean: number; std: number } {
  let s = 0, s2 = 0;
  for (let i = 0; i < x.length; i++) [s, s2] = [s + x[i], s2 + x[i] * x[i]];
  const mean = s / x.length;
  return { mean, std: Math.sqrt(s2 / x.length - mean * mean) };
}

// With n >= 16384 samples the sample std of a normal is within 3% of sigma far beyond 5 sigma
// (its standard error is sigma / sqrt(2n) < 0.6%), and the sample mean within 0.05 sigma.
Deno.test("initTensor: linear N(0, 1/fan_in), embedding N(0, 1/width), biases and norms", () => {
  const rng = new Rng(1);
  const check = (got: { mean: number; std: number }, mean: number, std: number, what: string) => {
    assert.ok(Math.abs(got.mean - mean) < 0.05 * std, `${what}: mean ${got.mean}`);
    assert.ok(Math.abs(got.std / std - 1) < 0.03, `${what}: std ${got.std}, expected ${std}`);
  };
  const linear = initTensor({ name: "w", shape: [256, 64], init: "linear" }, rng);
  check(moments(linear.data), 0, 1 / 8, "linear [256, 64]");
  const conv = initTensor({ name: "c", shape: [128, 3, 8, 8], init: "linear" }, rng);
  check(moments(conv.data), 0, 1 / Math.sqrt(192), "conv [128, 3, 8, 8]");
  const emb = initTensor({ name: "e", shape: [512, 64], init: "embedding" }, rng);
  check(moments(emb.data), 0, 1 / 8, "embedding [512, 64]");
  const bias = initTensor({ name: "b", shape: [16384], init: "bias" }, rng);
  check(moments(bias.data), 0, 0.1, "bias");
  const norm = initTensor({ name: "n", shape: [16384], init: "normWeight" }, rng);
  check(moments(norm.data), 1, 0.1, "norm weight");
});

Deno.test("initTensor: BLIP-2's fused qkv bias has a zero key third", () => {
  const t = initTensor({ name: "qkv.bias", shape: [96], init: "qkvBias" }, new Rng(2));
  const [q, k, v] = [0, 1, 2].map((i) => Array.from(t.data.subarray(32 * i, 32 * (i + 1))));
  assert.ok(k.every((x) => x === 0));
  assert.ok(q.every((x) => x !== 0) && v.every((x) => x !== 0));
});

Deno.test("tinyWeightSpecs: unique names, one tensor per spec; tinyWeights is seeded", () => {
  for (const arch of ["blip2-opt", "llava"] as const) {
    const dims = tinyDims(arch);
    const specs = tinyWeightSpecs(dims);
    assert.equal(new Set(specs.map((s) => s.name)).size, specs.length, arch);
    const a = tinyWeights(dims, 4), b = tinyWeights(dims, 4), c = tinyWeights(dims, 5);
    for (const s of specs) {
      assert.deepEqual(a[s.name].shape, s.shape, s.name);
      assert.deepEqual(a[s.name].data, b[s.name].data, s.name);
    }
    const name = specs.find((s) => s.init === "linear")!.name;
    assert.notDeepEqual(a[name].data, c[name].data);
  }
  const layers = (n: number) =>
    tinyWeightSpecs(tinyDims("llava", { layers: n }))
      .filter((s) => s.name.startsWith("language_model.model.layers.")).length;
  assert.equal(layers(6), 6 * layers(1));
});

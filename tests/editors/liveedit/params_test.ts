import assert from "node:assert/strict";
import { initParams, paramSpecs } from "../../../src/editors/liveedit/params.ts";
import { loadConfig } from "../../../src/editors/liveedit/config.ts";
import { Rng } from "../../../src/tensor/rng.ts";
import { fixtureDims, fixtureManifest } from "./_fixture.ts";

function stats(x: Float32Array) {
  let s = 0, s2 = 0, max = 0;
  for (const v of x) (s += v, s2 += v * v, max = Math.max(max, Math.abs(v)));
  const mean = s / x.length;
  return { mean, std: Math.sqrt(s2 / x.length - mean * mean), max };
}

Deno.test("parameter names and shapes are the authors' state dict (fixture manifest)", async () => {
  const manifest = await fixtureManifest();
  const specs = paramSpecs(await fixtureDims());
  assert.deepEqual(
    specs.map((s) => [s.name, s.shape]),
    manifest.params.map((p) => [p.name, p.shape]),
  );
});

Deno.test("initialisation statistics follow PyTorch's defaults", async () => {
  const dims = {
    ...(await loadConfig("blip2")).dims,
    llmMidDim: 512,
    moduleDim: 256,
    visionTokN: 8,
  };
  const p = initParams(dims, new Rng(7));
  // kaiming_normal_ on [1, e, m]: std sqrt(2 / (e·m)); on vis_rep_prot [1, n_v, d]: sqrt(2 / (n_v·d))
  for (
    const [name, fanIn] of [["inpt_extractor.eqe1", 4 * 256], ["moegen_c.phi", 4 * 256], [
      "inpt_extractor.vis_rep_prot",
      8 * 512,
    ]] as const
  ) {
    const { mean, std } = stats(p[name].data);
    const want = Math.sqrt(2 / fanIn);
    assert.ok(Math.abs(std / want - 1) < 0.1, `${name}: std ${std}, want ${want}`);
    assert.ok(Math.abs(mean) < 0.2 * want, `${name}: mean ${mean}`);
  }
  // Linear: U(±1/sqrt(fan_in)) for weight (kaiming-uniform a=√5) and bias
  const w = stats(p["edit_extractor.ca_query_info_ext1.k_mlp.weight"].data); // [256, 512]
  const bound = 1 / Math.sqrt(512);
  assert.ok(w.max <= bound && w.max > 0.99 * bound, `weight max ${w.max}, bound ${bound}`);
  assert.ok(Math.abs(w.std / (bound / Math.sqrt(3)) - 1) < 0.02, `weight std ${w.std}`);
  const b = stats(p["moegen_r.ca_lora.v_mlp.bias"].data); // fan_in 512
  assert.ok(b.max <= bound && b.max > 0.9 * bound, `bias max ${b.max}`);
  assert.ok(p["instant_reps_norm.weight"].data.every((v) => v === 1));
  assert.ok(p["edit_extractor.layer_norm2.bias"].data.every((v) => v === 0));
  // seeded: the same seed gives the same parameters, another seed others
  assert.deepEqual(initParams(dims, new Rng(7))["moegen_c.phi"].data, p["moegen_c.phi"].data);
  assert.notDeepEqual(initParams(dims, new Rng(8))["moegen_c.phi"].data, p["moegen_c.phi"].data);
});

import assert from "node:assert/strict";
import { join } from "node:path";
import { Graph } from "../../src/graph/ir.ts";
import {
  clipVision,
  loadClipVision,
  parseClipVisionConfig,
  selectFeatures,
} from "../../src/models/clip_vision.ts";
import { clipVisionFixture, refOf, runGraph } from "../../src/models/fixtures/vision.ts";
import { relErr } from "../../src/tensor/compare.ts";
import { slice } from "../../src/tensor/ops.ts";
import { editedConfig, fixtureDir, withFixture } from "./_vision.ts";

const DIR = fixtureDir("clip_vision");
const WEIGHTS = join(DIR, "model.safetensors");
const edited = (edits: Record<string, unknown>) => editedConfig(DIR, edits);

Deno.test("CLIP vision matches HF CLIPVisionModel on every reference tensor (rel err <= 1e-4, f32)", async () => {
  const rows = await clipVisionFixture(DIR);
  await withFixture(DIR, (fixture) => {
    const expected = [...fixture.refs.keys()].filter((n) => n !== "pixel_values").sort();
    assert.deepEqual(rows.map((r) => r.tensor).sort(), expected);
    for (const row of rows) {
      assert.ok(row.maxRelErr <= 1e-4, `${row.tensor}: relative error ${row.maxRelErr} > 1e-4`);
    }
  });
});

Deno.test("CLIP vision: batch is dynamic (one image gives the first row of the references)", async () => {
  await withFixture(DIR, async (fixture) => {
    const g = new Graph();
    const model = loadClipVision(g, fixture.store, parseClipVisionConfig(fixture.config));
    const out = clipVision(model, g.input("pixel_values", "f32", ["batch", 3, 32, 32]));
    const pixels = refOf(fixture, "pixel_values");
    const one = slice(pixels, [0], [1], [0]);
    const got = await runGraph(g, { pooled: out.pooled }, { pixel_values: one });
    const want = slice(refOf(fixture, "pooler_output"), [0], [1], [0]);
    assert.deepEqual(got.pooled.shape, [1, 32]);
    assert.ok(relErr(got.pooled, want) <= 1e-4);
  });
});

Deno.test("CLIP vision: config errors name the file and the field", async () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ num_hidden_layers: undefined }, /config\.json: field 'num_hidden_layers' is missing/],
    [{ hidden_size: "32" }, /config\.json: field 'hidden_size' must be an integer/],
    [{ patch_size: 0 }, /field 'patch_size' must be an integer >= 1, got 0/],
    [{ num_attention_heads: 5 }, /'num_attention_heads' \(5\) must divide hidden_size/],
    [{ hidden_act: "swish" }, /field 'hidden_act' must be one of .*"quick_gelu".*"swish"/],
    [{ layer_norm_eps: -1 }, /field 'layer_norm_eps' must be a positive number/],
  ];
  for (const [edit, message] of cases) {
    const fields = await edited(edit);
    assert.throws(() => parseClipVisionConfig(fields), message);
  }
  // HF defaults for fields real checkpoints leave out
  const minimal = parseClipVisionConfig(
    await edited({ hidden_act: undefined, layer_norm_eps: undefined, num_channels: undefined }),
  );
  assert.equal(minimal.hiddenAct, "quick_gelu");
  assert.equal(minimal.layerNormEps, 1e-5);
  assert.equal(minimal.numChannels, 3);
});

Deno.test("CLIP vision: a missing weight names the checkpoint file and the key", async () => {
  await withFixture(DIR, async (fixture) => {
    const config = parseClipVisionConfig(await edited({ num_hidden_layers: 4 }));
    assert.throws(
      () => loadClipVision(new Graph(), fixture.store, config),
      (e: Error) =>
        e.message.includes(WEIGHTS) &&
        e.message.includes("'vision_model.encoder.layers.3.layer_norm1.weight'"),
    );
    assert.throws(
      () => loadClipVision(new Graph(), fixture.store, parseClipVisionConfig(fixture.config), "x."),
      /no tensor 'x\.encoder\.layers\.0\.layer_norm1\.weight'/,
    );
  });
});

Deno.test("CLIP vision: a wrong weight shape names the key and both shapes", async () => {
  await withFixture(DIR, async (fixture) => {
    const config = parseClipVisionConfig(await edited({ intermediate_size: 48 }));
    assert.throws(
      () => loadClipVision(new Graph(), fixture.store, config),
      (e: Error) =>
        e.message.includes(WEIGHTS) &&
        e.message.includes("'vision_model.encoder.layers.0.mlp.fc1.weight'") &&
        e.message.includes("[64, 32]") && e.message.includes("expected [48, 32]"),
    );
    const small = parseClipVisionConfig(await edited({ image_size: 24 }));
    assert.throws(
      () => loadClipVision(new Graph(), fixture.store, small),
      /'vision_model\.embeddings\.position_embedding\.weight' has shape \[17, 32\], expected \[10, 32\]/,
    );
  });
});

Deno.test("CLIP vision: pixels of the wrong shape and bad feature layers are rejected", async () => {
  await withFixture(DIR, (fixture) => {
    const g = new Graph();
    const model = loadClipVision(g, fixture.store, parseClipVisionConfig(fixture.config));
    assert.throws(
      () => clipVision(model, g.input("p", "f32", ["batch", 3, 64, 64])),
      /CLIP vision: pixel values must be \[batch, 3, 32, 32\], got .*\[batch, 3, 64, 64\]/,
    );
    const { hiddenStates } = clipVision(model, g.input("q", "f32", ["batch", 3, 32, 32]));
    assert.throws(
      () => selectFeatures(hiddenStates, { layer: -5, strategy: "default" }),
      /vision_feature_layer -5 is outside the 4 hidden states/,
    );
    const full = selectFeatures(hiddenStates, { layer: -1, strategy: "full" });
    assert.deepEqual(full.shape, ["batch", 17, 32]);
    const two = selectFeatures(hiddenStates, { layer: [1, -2], strategy: "default" });
    assert.deepEqual(two.shape, ["batch", 16, 64]);
  });
});

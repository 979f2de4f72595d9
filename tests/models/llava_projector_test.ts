import assert from "node:assert/strict";
import { join } from "node:path";
import { Graph } from "../../src/graph/ir.ts";
import { SafetensorsFile, writeSafetensors } from "../../src/io/safetensors.ts";
import { openCheckpoint } from "../../src/io/sharded.ts";
import { llavaVisionFixture, refOf, runGraph } from "../../src/models/fixtures/vision.ts";
import {
  llavaImage,
  llavaKeyPrefix,
  loadLlavaImage,
  parseLlavaImageConfig,
} from "../../src/models/llava_projector.ts";
import { WeightStore } from "../../src/models/weights.ts";
import { relErr } from "../../src/tensor/compare.ts";
import type { Tensor } from "../../src/tensor/tensor.ts";
import { editedConfig, fixtureDir, withFixture } from "./_vision.ts";

const DIR = fixtureDir("llava");
const WEIGHTS = join(DIR, "model.safetensors");
const edited = (edits: Record<string, unknown>) => editedConfig(DIR, edits);

Deno.test("LLaVA image side (CLIP tower, selected features, projector) matches HF (rel err <= 1e-4, f32)", async () => {
  const rows = await llavaVisionFixture(DIR);
  await withFixture(DIR, (fixture) => {
    const expected = [...fixture.refs.keys()]
      .filter((n) => n.startsWith("vision.") || n === "image_features")
      .sort();
    assert.ok(expected.length >= 6, `only ${expected.length} image-side references`);
    assert.deepEqual(rows.map((r) => r.tensor).sort(), expected);
    for (const row of rows) {
      assert.ok(row.maxRelErr <= 1e-4, `${row.tensor}: relative error ${row.maxRelErr} > 1e-4`);
    }
  });
});

Deno.test("LLaVA: checkpoints with keys under model. (newer transformers) load the same model", async () => {
  const dir = await Deno.makeTempDir({ prefix: "liveedit-llava-" });
  try {
    const file = await SafetensorsFile.open(WEIGHTS);
    const tensors: Record<string, Tensor> = await file.readAll();
    file.close();
    const renamed = Object.fromEntries(
      Object.entries(tensors)
        .filter(([name]) => !name.startsWith("language_model."))
        .map(([name, t]) => [`model.${name}`, t]),
    );
    await writeSafetensors(join(dir, "model.safetensors"), renamed);
    const checkpoint = await openCheckpoint(dir);
    const store = await WeightStore.open(checkpoint);
    checkpoint.close();
    assert.equal(llavaKeyPrefix(store), "model.");
    await withFixture(DIR, async (fixture) => {
      assert.equal(llavaKeyPrefix(fixture.store), "");
      const config = parseLlavaImageConfig(fixture.config);
      assert.throws(
        () => loadLlavaImage(new Graph(), store, config),
        /no tensor 'vision_tower\.vision_model\.encoder\.layers\.0\.layer_norm1\.weight' \(did you mean "model\.vision_tower/,
      );
      const g = new Graph();
      const out = llavaImage(
        loadLlavaImage(g, store, config, "model."),
        g.input("pixel_values", "f32", ["batch", 3, 32, 32]),
      );
      const got = await runGraph(g, { features: out.imageFeatures }, {
        pixel_values: refOf(fixture, "pixel_values"),
      }, { cacheDir: join(dir, "cache") });
      assert.ok(relErr(got.features, refOf(fixture, "image_features")) <= 1e-4);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("LLaVA: config errors name the file and the field", async () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [
      { "vision_config.patch_size": undefined },
      /config\.json: field 'vision_config\.patch_size' is missing/,
    ],
    [{ vision_feature_layer: 4 }, /field 'vision_feature_layer' \(4\) is outside the 4 hidden/],
    [{ vision_feature_layer: -5 }, /field 'vision_feature_layer' \(-5\) is outside/],
    [{ vision_feature_layer: [] }, /'vision_feature_layer' must be an integer or a non-empty list/],
    [{ vision_feature_layer: "-2" }, /'vision_feature_layer' must be an integer or/],
    [
      { vision_feature_select_strategy: "cls" },
      /'vision_feature_select_strategy' must be one of "default", "full", got "cls"/,
    ],
    [{ projector_hidden_act: "mish" }, /field 'projector_hidden_act' must be one of/],
    [{ "text_config.hidden_size": 0 }, /'text_config\.hidden_size' must be an integer >= 1/],
  ];
  for (const [edits, message] of cases) {
    const fields = await edited(edits);
    assert.throws(() => parseLlavaImageConfig(fields), message);
  }
  const defaults = parseLlavaImageConfig(
    await edited({
      vision_feature_layer: undefined,
      vision_feature_select_strategy: undefined,
      projector_hidden_act: undefined,
    }),
  );
  assert.deepEqual(defaults.features, { layer: -2, strategy: "default" });
  assert.equal(defaults.projectorHiddenAct, "gelu");
});

Deno.test("LLaVA: projector shapes follow the text width and the number of feature layers", async () => {
  await withFixture(DIR, async (fixture) => {
    const narrow = parseLlavaImageConfig(await edited({ "text_config.hidden_size": 48 }));
    assert.throws(
      () => loadLlavaImage(new Graph(), fixture.store, narrow),
      (e: Error) =>
        e.message.startsWith(WEIGHTS) &&
        /'multi_modal_projector\.linear_1\.weight' has shape \[64, 32\], expected \[48, 32\]/
          .test(e.message),
    );
    const two = parseLlavaImageConfig(await edited({ vision_feature_layer: [-2, -1] }));
    assert.throws(
      () => loadLlavaImage(new Graph(), fixture.store, two),
      /'multi_modal_projector\.linear_1\.weight' has shape \[64, 32\], expected \[64, 64\]/,
    );
    const full = parseLlavaImageConfig(await edited({ vision_feature_select_strategy: "full" }));
    const g = new Graph();
    const out = llavaImage(
      loadLlavaImage(g, fixture.store, full),
      g.input("pixel_values", "f32", ["batch", 3, 32, 32]),
    );
    assert.deepEqual(out.imageFeatures.shape, ["batch", 17, 64]);
  });
});

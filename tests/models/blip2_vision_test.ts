import assert from "node:assert/strict";
import { join } from "node:path";
import { Graph } from "../../src/graph/ir.ts";
import { SafetensorsFile, writeSafetensors } from "../../src/io/safetensors.ts";
import { openCheckpoint } from "../../src/io/sharded.ts";
import { blip2Vision, loadBlip2Vision } from "../../src/models/blip2_vision.ts";
import { blip2VisionFixture, refOf, runGraph } from "../../src/models/fixtures/vision.ts";
import {
  blip2ImagePrefix,
  loadBlip2ImagePrefix,
  loadQFormer,
  parseBlip2Config,
  qformer,
} from "../../src/models/qformer.ts";
import { WeightStore } from "../../src/models/weights.ts";
import { relErr } from "../../src/tensor/compare.ts";
import { slice } from "../../src/tensor/ops.ts";
import type { Tensor } from "../../src/tensor/tensor.ts";
import { editedConfig, fixtureDir, withFixture } from "./_vision.ts";

const DIR = fixtureDir("blip2_opt");
const WEIGHTS = join(DIR, "model.safetensors");
const edited = (edits: Record<string, unknown>) => editedConfig(DIR, edits);

Deno.test("BLIP-2 ViT, Q-Former and language projection match HF on every reference tensor (rel err <= 1e-4, f32)", async () => {
  const rows = await blip2VisionFixture(DIR);
  await withFixture(DIR, (fixture) => {
    const expected = [...fixture.refs.keys()]
      .filter((n) => /^(vision\.|qformer\.|language_projection$)/.test(n))
      .sort();
    assert.ok(expected.length >= 9, `only ${expected.length} image-side references`);
    assert.deepEqual(rows.map((r) => r.tensor).sort(), expected);
    for (const row of rows) {
      assert.ok(row.maxRelErr <= 1e-4, `${row.tensor}: relative error ${row.maxRelErr} > 1e-4`);
    }
  });
});

Deno.test("BLIP-2 image prefix: batch is dynamic (one image gives the first row of the references)", async () => {
  await withFixture(DIR, async (fixture) => {
    const g = new Graph();
    const model = loadBlip2ImagePrefix(g, fixture.store, parseBlip2Config(fixture.config));
    const out = blip2ImagePrefix(model, g.input("pixel_values", "f32", ["batch", 3, 32, 32]));
    const one = slice(refOf(fixture, "pixel_values"), [0], [1], [0]);
    const got = await runGraph(g, { tokens: out.imageTokens }, { pixel_values: one });
    assert.deepEqual(got.tokens.shape, [1, 4, 32]);
    const want = slice(refOf(fixture, "language_projection"), [0], [1], [0]);
    assert.ok(relErr(got.tokens, want) <= 1e-4);
  });
});

Deno.test("BLIP-2 ViT: q_bias/v_bias checkpoints (Salesforce layout) give the fused-bias result", async () => {
  const dir = await Deno.makeTempDir({ prefix: "liveedit-blip2-" });
  try {
    const file = await SafetensorsFile.open(WEIGHTS);
    const tensors: Record<string, Tensor> = await file.readAll();
    file.close();
    const split: Record<string, Tensor> = {};
    for (const [name, t] of Object.entries(tensors)) {
      const m = /^(.*self_attn\.)qkv\.bias$/.exec(name);
      if (!m) {
        split[name] = t;
        continue;
      }
      const d = t.shape[0] / 3;
      const k = slice(t, [d], [2 * d]);
      assert.ok(Array.from(k.data as Float32Array).every((x) => x === 0), `${name}: k bias not 0`);
      split[`${m[1]}q_bias`] = slice(t, [0], [d]);
      split[`${m[1]}v_bias`] = slice(t, [2 * d], [3 * d]);
    }
    await writeSafetensors(join(dir, "model.safetensors"), split);
    const checkpoint = await openCheckpoint(dir);
    const store = await WeightStore.open(checkpoint);
    checkpoint.close();
    assert.ok(!store.has("vision_model.encoder.layers.0.self_attn.qkv.bias"));
    await withFixture(DIR, async (fixture) => {
      const g = new Graph();
      const config = parseBlip2Config(fixture.config);
      const out = blip2Vision(
        loadBlip2Vision(g, store, config.vision),
        g.input("pixel_values", "f32", ["batch", 3, 32, 32]),
      );
      const got = await runGraph(g, { embeds: out.lastHiddenState }, {
        pixel_values: refOf(fixture, "pixel_values"),
      }, { cacheDir: join(dir, "cache") });
      assert.ok(relErr(got.embeds, refOf(fixture, "vision.last_hidden_state")) <= 1e-4);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("BLIP-2: config errors name the file and the nested field", async () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [
      { "vision_config.hidden_size": undefined },
      /config\.json: field 'vision_config\.hidden_size' is missing/,
    ],
    [
      { "qformer_config.cross_attention_frequency": 0 },
      /field 'qformer_config\.cross_attention_frequency' must be an integer >= 1, got 0/,
    ],
    [{ num_query_tokens: "4" }, /field 'num_query_tokens' must be an integer >= 1, got "4"/],
    [{ text_config: undefined }, /config\.json: field 'text_config' is missing/],
    [{ "qformer_config.hidden_act": "tanh" }, /field 'qformer_config\.hidden_act' must be one of/],
    [{ "vision_config.qkv_bias": "yes" }, /'vision_config\.qkv_bias' must be true or false/],
    [
      { "qformer_config.num_attention_heads": 3 },
      /'qformer_config\.num_attention_heads' \(3\) must divide hidden_size \(32\)/,
    ],
  ];
  for (const [edits, message] of cases) {
    const fields = await edited(edits);
    assert.throws(() => parseBlip2Config(fields), message);
  }
  // encoder_hidden_size follows the vision width, as Blip2Config sets it
  const config = parseBlip2Config(await edited({ "qformer_config.encoder_hidden_size": 7 }));
  assert.equal(config.qformer.encoderHiddenSize, 32);
});

Deno.test("BLIP-2: a missing weight names the checkpoint file and the key", async () => {
  await withFixture(DIR, async (fixture) => {
    const every = parseBlip2Config(await edited({ "qformer_config.cross_attention_frequency": 1 }));
    assert.throws(
      () => loadQFormer(new Graph(), fixture.store, every.qformer),
      (e: Error) =>
        e.message.includes(WEIGHTS) &&
        e.message.includes("'qformer.encoder.layer.1.crossattention.attention.query.weight'"),
    );
    const deeper = parseBlip2Config(await edited({ "vision_config.num_hidden_layers": 3 }));
    assert.throws(
      () => loadBlip2Vision(new Graph(), fixture.store, deeper.vision),
      /no tensor 'vision_model\.encoder\.layers\.2\.layer_norm1\.weight'/,
    );
  });
});

Deno.test("BLIP-2: a wrong weight shape names the key and both shapes", async () => {
  await withFixture(DIR, async (fixture) => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ num_query_tokens: 5 }, /'query_tokens' has shape \[1, 4, 32\], expected \[1, 5, 32\]/],
      [
        { "text_config.hidden_size": 64 },
        /'language_projection\.weight' has shape \[32, 32\], expected \[64, 32\]/,
      ],
      [
        { "qformer_config.intermediate_size": 16 },
        /'qformer\.encoder\.layer\.0\.intermediate_query\.dense\.weight' has shape \[64, 32\], expected \[16, 32\]/,
      ],
      [
        { "vision_config.patch_size": 16 },
        /'vision_model\.embeddings\.patch_embedding\.weight' has shape \[32, 3, 8, 8\], expected \[32, 3, 16, 16\]/,
      ],
    ];
    for (const [edits, message] of cases) {
      const config = parseBlip2Config(await edited(edits));
      assert.throws(
        () => loadBlip2ImagePrefix(new Graph(), fixture.store, config),
        (e: Error) => e.message.startsWith(WEIGHTS) && message.test(e.message),
      );
    }
  });
});

Deno.test("BLIP-2: inputs of the wrong shape are rejected naming the model", async () => {
  await withFixture(DIR, (fixture) => {
    const g = new Graph();
    const model = loadBlip2ImagePrefix(g, fixture.store, parseBlip2Config(fixture.config));
    assert.throws(
      () => blip2Vision(model.vision, g.input("p", "f32", ["batch", 1, 32, 32])),
      /BLIP-2 vision: pixel values must be \[batch, 3, 32, 32\]/,
    );
    const embeds = g.input("e", "f32", ["batch", 17, 32]);
    assert.throws(
      () => qformer(model.qformer, g.input("q", "f32", [2, 4, 32]), embeds),
      /Q-Former: query tokens must be \[1, Q, 32\]/,
    );
    assert.throws(
      () => qformer(model.qformer, model.queryTokens, g.input("x", "f32", ["batch", 17, 8])),
      /Q-Former: image embeds must be \[batch, S, 32\]/,
    );
  });
});

import assert from "node:assert/strict";
import { join } from "node:path";
import { compileModel } from "../../src/graph/compile.ts";
import { grad } from "../../src/graph/grad.ts";
import * as op from "../../src/graph/ops.ts";
import {
  checkDecoderFixture,
  forwardGraph,
  hookedGraph,
  runTraced,
} from "../../src/models/fixtures/decoder.ts";
import { loadDecoder } from "../../src/models/backbones.ts";
import { loadOpt, OptDecoder } from "../../src/models/opt.ts";
import { LocalSession } from "../../src/runtime/session.ts";
import { inputsSpecOf } from "../../src/graph/runner.ts";
import { randn } from "../../src/tensor/create.ts";
import { relErr } from "../../src/tensor/compare.ts";
import * as t from "../../src/tensor/ops.ts";
import { Rng } from "../../src/tensor/rng.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import {
  assertCachedGreedyMatches,
  assertVllmLanguageModel,
  DECODER_REFS,
  FIXTURES,
  i64,
  patchedFixture,
  readAll,
  withTempDir,
} from "./_decoder.ts";

const OPT = join(FIXTURES, "opt");

Deno.test("opt: every reference tensor within 1e-4 relative error (f32)", async () => {
  const rows = await checkDecoderFixture(OPT);
  assert.deepEqual(rows.map((r) => r.tensor).sort(), [...DECODER_REFS].sort());
  for (const r of rows) assert.ok(r.maxRelErr <= 1e-4, `${r.tensor}: ${r.maxRelErr}`);
});

Deno.test("opt: loadDecoder picks OptDecoder from model_type and reads the config", async () => {
  const d = await loadDecoder(OPT);
  assert.ok(d instanceof OptDecoder);
  assert.equal(d.config.numLayers, 2);
  assert.equal(d.config.hiddenSize, 32);
  assert.equal((d as OptDecoder).config.layerNormBefore, true);
  assert.equal((d as OptDecoder).config.tieWordEmbeddings, true);
});

Deno.test("opt: greedy decoding with the KV cache equals rerunning the whole sequence", async () => {
  await withTempDir(async (dir) => {
    const opt = await loadOpt(OPT);
    // row 1 is left-padded: its learned positions come from the mask in both paths
    const prompt = i64([2, 5], [35, 82, 50, 101, 104, 1, 1, 73, 83, 7]);
    const mask = i64([2, 5], [1, 1, 1, 1, 1, 0, 0, 1, 1, 1]);
    const tokens = await assertCachedGreedyMatches(opt, prompt, mask, 6, dir);
    assert.equal(tokens[0].length, 6);
  });
});

Deno.test("opt: gradient of the losses w.r.t. the residual after layer 0 matches finite differences", async () => {
  await withTempDir(async (dir) => {
    const opt = await loadOpt(OPT);
    const refs = await readAll(join(OPT, "refs.safetensors"));
    const traced = hookedGraph(opt, 0);
    const loss = op.add(traced.outputs["loss.label_loss"], traced.outputs["loss.logit_KL_loss"]);
    const [dResidual] = grad(loss, [traced.graph.inputs.get("residual")!]);
    const { path } = await compileModel(traced.graph, { loss, dResidual }, { cacheDir: dir });
    const session = await LocalSession.create(path, { inputsSpec: inputsSpecOf(traced.graph) });
    try {
      const feeds = {
        hidden: refs["layer_out.0"],
        attention_mask: refs.attention_mask,
        label_ids: refs["loss.label_ids"],
        label_masks: refs["loss.label_masks"],
        logits: refs.logits,
      };
      const at = async (residual: Tensor) => await session.run({ ...feeds, residual });
      const base = refs["hook.residual"];
      const g = (await at(base)).dResidual;
      assert.deepEqual(g.shape, base.shape);
      const norm = Math.hypot(...(g.data as Float32Array));
      const rng = new Rng(3);
      const eps = 3e-3; // f32 round-off / eps and curvature · eps² both stay below 1e-4
      for (let trial = 0; trial < 3; trial++) {
        const v = randn(base.shape, rng);
        const shifted = (sign: number) =>
          new Tensor(
            "f32",
            base.shape,
            (base.data as Float32Array).map((x, i) => x + sign * eps * v.data[i]),
          );
        const up = Number((await at(shifted(1))).loss.data[0]);
        const down = Number((await at(shifted(-1))).loss.data[0]);
        const fd = (up - down) / (2 * eps);
        const analytic = (g.data as Float32Array).reduce((s, x, i) => s + x * v.data[i], 0);
        assert.ok(
          Math.abs(fd - analytic) <= 1e-2 * Math.abs(analytic) + 1e-3 * norm,
          `direction ${trial}: finite difference ${fd}, gradient ${analytic}`,
        );
      }
    } finally {
      await session.release();
    }
  });
});

Deno.test("opt: stages [0, 1) and [1, 2) from a fed hidden state give the full model's logits", async () => {
  await withTempDir(async (dir) => {
    const opt = await loadOpt(OPT);
    const refs = await readAll(join(OPT, "refs.safetensors"));
    const zero = new Tensor(
      "f32",
      refs["hook.residual"].shape,
      new Float32Array(refs["hook.residual"].size),
    );
    const out = await runTraced(hookedGraph(opt, 0), {
      hidden: refs["layer_out.0"],
      residual: zero,
      attention_mask: refs.attention_mask,
      label_ids: refs["loss.label_ids"],
      label_masks: refs["loss.label_masks"],
      logits: refs.logits,
    }, { cacheDir: dir });
    const logits = out["hooked.logits"].data as Float32Array;
    const ref = refs.logits.data as Float32Array;
    const maxRef = Math.max(...ref.map(Math.abs));
    // the first 9 + 7 positions are tokens (attention_mask = 1)
    for (let p = 0; p < 16; p++) {
      for (let v = 0; v < 128; v++) {
        const i = p * 128 + v;
        assert.ok(Math.abs(logits[i] - ref[i]) <= 1e-4 * maxRef, `position ${p}, token ${v}`);
      }
    }
    assert.ok(Math.abs(Number(out["loss.logit_KL_loss"].data[0])) < 1e-6, "no edit, no KL");
  });
});

Deno.test("opt: a missing weight is an error naming the checkpoint and the key", async () => {
  await withTempDir(async (dir) => {
    await patchedFixture("opt", dir, {}, (w) => delete w["model.decoder.layers.1.fc2.weight"]);
    await assert.rejects(loadOpt(dir), (e: Error) => {
      assert.match(e.message, /model\.decoder\.layers\.1\.fc2\.weight/);
      assert.ok(e.message.includes(dir), e.message);
      return true;
    });
  });
});

Deno.test("opt: a weight of the wrong shape is an error naming the file, key and both shapes", async () => {
  await withTempDir(async (dir) => {
    await patchedFixture("opt", dir, {}, (w) => {
      w["model.decoder.layers.0.fc1.weight"] = new Tensor(
        "f32",
        [63, 32],
        new Float32Array(63 * 32),
      );
    });
    await assert.rejects(loadOpt(dir), (e: Error) => {
      assert.match(e.message, /model\.safetensors/);
      assert.match(e.message, /model\.decoder\.layers\.0\.fc1\.weight/);
      assert.match(e.message, /\[63, 32\].*\[64, 32\]/);
      return true;
    });
  });
});

Deno.test("opt: config errors name the file and field", async () => {
  await withTempDir(async (dir) => {
    await patchedFixture("opt", dir, { model_type: "gpt2" });
    await assert.rejects(
      loadDecoder(dir),
      /config\.json: field 'model_type' must be one of "opt", "llama", got "gpt2"/,
    );
    await patchedFixture("opt", dir, { model_type: "opt", word_embed_proj_dim: 16 });
    await assert.rejects(
      loadOpt(dir),
      /config\.json: field 'word_embed_proj_dim' must equal hidden_size 32/,
    );
    await patchedFixture("opt", dir, { word_embed_proj_dim: 32, num_hidden_layers: 0 });
    await assert.rejects(loadOpt(dir), /field 'num_hidden_layers' must be an integer >= 1/);
  });
});

Deno.test("opt: a layer index outside the model is an error", async () => {
  const opt = await loadOpt(OPT);
  assert.throws(() => hookedGraph(opt, 2), /layer 2 does not exist \(2 layers\)/);
});

Deno.test("opt: BLIP-2's language model (text_config, language_model. keys) from its input embeddings", async () => {
  await withTempDir(async (dir) => {
    await assertVllmLanguageModel("blip2_opt", "lm.attention_mask", "lm.logits", dir);
  });
});

/**
 * A naive OPT forward pass on the host (one unpadded sequence), independent of the graph code:
 * logits `[s, vocab]`. `before` selects pre-LN (`do_layer_norm_before`) or post-LN blocks.
 */
function naiveOpt(w: Record<string, Tensor>, ids: number[], before: boolean): Tensor {
  const [heads, layers] = [4, 2];
  const p = "model.decoder.";
  const s = ids.length;
  const d = w[p + "embed_tokens.weight"].shape[1];
  const hd = d / heads;
  const lin = (x: Tensor, name: string) =>
    t.add(t.matmul(x, t.transpose(w[`${p}${name}.weight`])), w[`${p}${name}.bias`]);
  const ln = (x: Tensor, name: string) =>
    t.layerNorm(x, w[`${p}${name}.weight`], w[`${p}${name}.bias`]);
  const causal = new Tensor(
    "f32",
    [s, s],
    Float32Array.from({ length: s * s }, (_, k) => (k % s <= Math.floor(k / s) ? 0 : -1e30)),
  );
  const toHeads = (x: Tensor) => t.transpose(t.reshape(x, [s, heads, hd]), [1, 0, 2]);
  let x = t.add(
    t.gather(w[p + "embed_tokens.weight"], i64([s], ids), 0),
    t.gather(w[p + "embed_positions.weight"], i64([s], ids.map((_, i) => i + 2)), 0),
  );
  for (let l = 0; l < layers; l++) {
    const a = `layers.${l}.`;
    let h = before ? ln(x, a + "self_attn_layer_norm") : x;
    const [q, k, v] = ["q_proj", "k_proj", "v_proj"].map((n) =>
      toHeads(lin(h, a + "self_attn." + n))
    );
    const scores = t.add(t.mul(t.matmul(q, t.transpose(k, [0, 2, 1])), hd ** -0.5), causal);
    const o = t.reshape(t.transpose(t.matmul(t.softmax(scores, -1), v), [1, 0, 2]), [s, d]);
    x = t.add(x, lin(o, a + "self_attn.out_proj"));
    if (!before) x = ln(x, a + "self_attn_layer_norm");
    h = before ? ln(x, a + "final_layer_norm") : x;
    x = t.add(x, lin(t.maximum(lin(h, a + "fc1"), 0), a + "fc2"));
    if (!before) x = ln(x, a + "final_layer_norm");
  }
  if (before) x = ln(x, "final_layer_norm");
  return t.matmul(x, t.transpose(w[p + "embed_tokens.weight"]));
}

Deno.test("opt: post-LN blocks (do_layer_norm_before: false) match a naive host implementation", async () => {
  await withTempDir(async (dir) => {
    const weights = await readAll(join(OPT, "model.safetensors"));
    const refs = await readAll(join(OPT, "refs.safetensors"));
    const ids = Array.from(refs.input_ids.data.subarray(0, 9), Number);
    const feeds = { input_ids: i64([1, 9], ids), attention_mask: i64([1, 9], Array(9).fill(1)) };
    // the naive reference reproduces HF on the pre-LN fixture (row 0 is unpadded)
    const refRow = t.slice(refs.logits, [0], [1], [0]);
    assert.ok(relErr(t.reshape(naiveOpt(weights, ids, true), [1, 9, 128]), refRow) <= 1e-4);
    const postDir = join(dir, "post");
    await Deno.mkdir(postDir);
    await patchedFixture("opt", postDir, { do_layer_norm_before: false });
    const post = await loadOpt(postDir);
    assert.equal(post.config.finalLayerNorm, false);
    const ours =
      (await runTraced(forwardGraph(post), feeds, { cacheDir: join(dir, "cache") })).logits;
    const naive = t.reshape(naiveOpt(weights, ids, false), [1, 9, 128]);
    assert.ok(relErr(ours, naive) <= 1e-4, `${relErr(ours, naive)}`);
    assert.ok(relErr(ours, refRow) > 1e-2, "post-LN differs from pre-LN");
  });
});

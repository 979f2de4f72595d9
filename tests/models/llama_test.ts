import assert from "node:assert/strict";
import { join } from "node:path";
import { checkDecoderFixture, forwardGraph, runTraced } from "../../src/models/fixtures/decoder.ts";
import { LlamaDecoder, loadLlama, rotaryTables } from "../../src/models/llama.ts";
import { loadDecoder } from "../../src/models/backbones.ts";
import { relErr } from "../../src/tensor/compare.ts";
import { concat, slice } from "../../src/tensor/ops.ts";
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

const LLAMA = join(FIXTURES, "llama");

Deno.test("llama: every reference tensor within 1e-4 relative error (f32)", async () => {
  const rows = await checkDecoderFixture(LLAMA);
  assert.deepEqual(rows.map((r) => r.tensor).sort(), [...DECODER_REFS].sort());
  for (const r of rows) assert.ok(r.maxRelErr <= 1e-4, `${r.tensor}: ${r.maxRelErr}`);
});

Deno.test("llama: loadDecoder picks LlamaDecoder and reads rope_theta, eps and heads", async () => {
  const d = await loadDecoder(LLAMA);
  assert.ok(d instanceof LlamaDecoder);
  const c = (d as LlamaDecoder).config;
  assert.deepEqual(
    [c.ropeTheta, c.rmsNormEps, c.numHeads, c.numKvHeads, c.headDim, c.tieWordEmbeddings],
    [10000, 1e-5, 4, 4, 16, false],
  );
});

Deno.test("llama: rotary tables follow HF's rotate-half layout (both halves share a frequency)", async () => {
  const { config } = await loadLlama(LLAMA);
  const { cos, sin } = rotaryTables(config);
  assert.deepEqual(cos.shape, [128, 16]);
  const p = 7, i = 3;
  const angle = p * 10000 ** (-(2 * i) / 16);
  for (const j of [i, i + 8]) {
    assert.ok(Math.abs(cos.data[p * 16 + j] - Math.cos(angle)) < 1e-6);
    assert.ok(Math.abs(sin.data[p * 16 + j] - Math.sin(angle)) < 1e-6);
  }
});

Deno.test("llama: greedy decoding with the KV cache equals rerunning the whole sequence", async () => {
  await withTempDir(async (dir) => {
    const llama = await loadLlama(LLAMA);
    const prompt = i64([2, 5], [40, 132, 5, 155, 153, 0, 0, 58, 3, 111]);
    const mask = i64([2, 5], [1, 1, 1, 1, 1, 0, 0, 1, 1, 1]);
    await assertCachedGreedyMatches(llama, prompt, mask, 6, dir);
  });
});

/** The rows of heads `heads` (each `hd` rows) of a projection weight `[h·hd, d]`. */
function headRows(w: Tensor, heads: number[], hd: number): Tensor {
  return concat(heads.map((h) => slice(w, [h * hd], [(h + 1) * hd], [0])), 0);
}

Deno.test("llama: grouped-query attention equals MHA with each key/value head repeated", async () => {
  await withTempDir(async (dir) => {
    const [gqaDir, mhaDir] = [join(dir, "gqa"), join(dir, "mha")];
    await Deno.mkdir(gqaDir);
    await Deno.mkdir(mhaDir);
    const regroup = (heads: number[]) => (w: Record<string, Tensor>) => {
      for (const name of Object.keys(w)) {
        if (/\.(k|v)_proj\.weight$/.test(name)) w[name] = headRows(w[name], heads, 16);
      }
    };
    // GQA keeps heads 1 and 3 as its 2 key/value heads; query heads 0,1 use the first, 2,3 the second
    await patchedFixture("llama", gqaDir, { num_key_value_heads: 2 }, regroup([1, 3]));
    await patchedFixture("llama", mhaDir, {}, regroup([1, 1, 3, 3]));
    const refs = await readAll(join(LLAMA, "refs.safetensors"));
    const feeds = { input_ids: refs.input_ids, attention_mask: refs.attention_mask };
    const run = async (d: string) =>
      (await runTraced(forwardGraph(await loadLlama(d)), feeds, { cacheDir: join(dir, "cache") }))
        .logits;
    const [gqa, mha] = [await run(gqaDir), await run(mhaDir)];
    assert.ok(relErr(gqa, mha) <= 1e-5, `${relErr(gqa, mha)}`);
    assert.ok(relErr(gqa, refs.logits) > 1e-2, "the regrouped model differs from the original");
    const prompt = i64([2, 4], [40, 132, 5, 155, 0, 58, 3, 111]);
    const mask = i64([2, 4], [1, 1, 1, 1, 0, 1, 1, 1]);
    await assertCachedGreedyMatches(await loadLlama(gqaDir), prompt, mask, 4, join(dir, "cache"));
  });
});

Deno.test("llama: tie_word_embeddings reads the head from embed_tokens", async () => {
  await withTempDir(async (dir) => {
    const [tied, copied] = [join(dir, "tied"), join(dir, "copied")];
    await Deno.mkdir(tied);
    await Deno.mkdir(copied);
    await patchedFixture(
      "llama",
      tied,
      { tie_word_embeddings: true },
      (w) => delete w["lm_head.weight"],
    );
    await patchedFixture(
      "llama",
      copied,
      {},
      (w) => w["lm_head.weight"] = w["model.embed_tokens.weight"],
    );
    const refs = await readAll(join(LLAMA, "refs.safetensors"));
    const feeds = { input_ids: refs.input_ids, attention_mask: refs.attention_mask };
    const run = async (d: string) =>
      (await runTraced(forwardGraph(await loadLlama(d)), feeds, { cacheDir: join(dir, "cache") }))
        .logits;
    assert.equal(relErr(await run(tied), await run(copied)), 0);
  });
});

Deno.test("llama: LLaVA's language model (text_config, language_model. keys) from its input embeddings", async () => {
  await withTempDir(async (dir) => {
    await assertVllmLanguageModel("llava", "attention_mask", "logits", dir);
  });
});

Deno.test("llama: a missing lm_head is an error naming the checkpoint and the key", async () => {
  await withTempDir(async (dir) => {
    await patchedFixture("llama", dir, {}, (w) => delete w["lm_head.weight"]);
    await assert.rejects(loadLlama(dir), (e: Error) => {
      assert.match(e.message, /'lm_head\.weight'/);
      assert.ok(e.message.includes(dir), e.message);
      return true;
    });
  });
});

Deno.test("llama: a weight of the wrong shape is an error naming the file, key and both shapes", async () => {
  await withTempDir(async (dir) => {
    await patchedFixture("llama", dir, {}, (w) => {
      const name = "model.layers.1.mlp.down_proj.weight";
      w[name] = new Tensor("f32", [64, 127], new Float32Array(64 * 127));
    });
    await assert.rejects(
      loadLlama(dir),
      /model\.safetensors: tensor 'model\.layers\.1\.mlp\.down_proj\.weight' has shape \[64, 127\], expected \[64, 128\]/,
    );
  });
});

Deno.test("llama: a directory without config.json is an error naming the file", async () => {
  await withTempDir(async (dir) => {
    await assert.rejects(
      loadLlama(join(dir, "none")),
      /none\/config\.json does not exist/,
    );
  });
});

Deno.test("llama: unsupported configs are errors naming the file and field", async () => {
  await withTempDir(async (dir) => {
    await patchedFixture("llama", dir, { rope_parameters: { rope_type: "linear", factor: 2 } });
    await assert.rejects(
      loadLlama(dir),
      /config\.json: field 'rope_parameters\.rope_type' must be one of "default"/,
    );
    await patchedFixture("llama", dir, { num_key_value_heads: 3 });
    await assert.rejects(
      loadLlama(dir),
      /field 'num_key_value_heads' \(3\) must divide num_attention_heads 4/,
    );
    await patchedFixture("llama", dir, { model_type: "mistral" });
    await assert.rejects(
      loadDecoder(dir),
      /field 'model_type' must be one of "opt", "llama", got "mistral"/,
    );
  });
});

import assert from "node:assert/strict";
import { grad } from "../../../src/graph/grad.ts";
import { Graph } from "../../../src/graph/ir.ts";
import * as op from "../../../src/graph/ops.ts";
import { forwardGraph } from "../../../src/models/fixtures/decoder.ts";
import { labelLoss } from "../../../src/models/losses.ts";
import { loadVllm, type Vllm, VLLM_INPUTS, VllmRunner } from "../../../src/models/vllm/mod.ts";
import { relErr } from "../../../src/tensor/compare.ts";
import { Rng } from "../../../src/tensor/rng.ts";
import { randn } from "../../../src/tensor/create.ts";
import { Tensor } from "../../../src/tensor/tensor.ts";
import { pixels, withTempDir, writeTinyVllm } from "./_tiny.ts";

const FAMILIES = ["blip-2", "llava", "minigpt4"] as const;

async function withRunner(
  family: (typeof FAMILIES)[number],
  fn: (vllm: Vllm, runner: VllmRunner) => Promise<void>,
): Promise<void> {
  await withTempDir(async (dir) => {
    const vllm = await loadVllm(await writeTinyVllm(family, `${dir}`));
    const cacheDir = await Deno.makeTempDir({ dir, prefix: "graphs-" });
    const runner = new VllmRunner(vllm, { cacheDir });
    try {
      await fn(vllm, runner);
    } finally {
      await runner.close();
      vllm.close();
    }
  });
}

const REQUESTS = [
  { prompt: "what is this?", target: "a cat", image: pixels(1, 32, 1) },
  { prompt: "a photo of", target: " a dog on the grass", image: pixels(1, 32, 2) },
];
const TEXT_ONLY = REQUESTS.map(({ prompt, target }) => ({ prompt, target }));

function argmaxLast(logits: Tensor, row: number, position: number): number {
  const [, s, v] = logits.shape;
  const data = (logits.data as Float32Array).subarray(
    (row * s + position) * v,
    (row * s + position + 1) * v,
  );
  return data.indexOf(Math.max(...data));
}

for (const family of FAMILIES) {
  Deno.test(`${family}: stages composed equal the full forward pass (with and without images)`, async () => {
    await withRunner(family, async (vllm, runner) => {
      for (const requests of [REQUESTS, TEXT_ONLY]) {
        const batch = await vllm.prepare(requests);
        const full = await runner.forward(batch);
        const n = vllm.numLayers;
        for (let l = 0; l < n; l++) {
          // (layers 0..l) then (from layer l): hidden states at layer l, then the rest
          const hidden = await runner.hiddenAt(batch, l);
          assert.ok(relErr(hidden, full.layerOut[l]) <= 1e-6);
          const logits = await runner.logitsFrom(l, hidden, batch.attentionMask);
          assert.ok(relErr(logits, full.logits) <= 1e-6, `split after layer ${l}`);
        }
        for (let a = 0; a <= n; a++) {
          const first = await runner.stage(0, a, batch);
          const last = await runner.stage(a, n, batch, first.hidden);
          assert.ok(relErr(last.logits!, full.logits) <= 1e-6, `stages [0, ${a}) [${a}, ${n})`);
        }
      }
    });
  });

  Deno.test(`${family}: greedy generation with the KV cache equals uncached argmax decoding`, async () => {
    await withRunner(family, async (vllm, runner) => {
      const tok = await vllm.tokenizer();
      for (
        const input of [{ text: "what is this?", image: pixels(1, 32, 3) }, { text: "a photo of" }]
      ) {
        const cached = await runner.generate(input, { maxNewTokens: 6 });
        const withImage = input.image !== undefined;
        const layout = vllm.layout(tok, input.text, withImage);
        const px = withImage ? await vllm.pixelValues([input.image!]) : undefined;
        const ids: number[] = [];
        for (let step = 0; step < 6; step++) {
          const x = vllm.inputsFromLayouts(
            [{ ids: [...layout.ids, ...ids], vision: layout.vision }],
            vllm.padId(tok),
            px,
          );
          const { logits } = await runner.forward(x);
          const next = argmaxLast(logits, 0, x.lengths[0] - 1);
          if (next === tok.eos?.id) break;
          ids.push(next);
        }
        assert.deepEqual(cached.ids, ids);
        assert.equal(cached.stopped, ids.length === 6 ? "length" : "eos");
        assert.equal(cached.text, tok.decode(ids, { skipSpecialTokens: true }));
      }
    });
  });

  Deno.test(`${family}: the text-only path equals the plain decoder on the same ids`, async () => {
    await withRunner(family, async (vllm, runner) => {
      const batch = await vllm.prepare(TEXT_ONLY);
      const ours = await runner.forward(batch);
      const plain = forwardGraph(vllm.decoder);
      const ref = await runner.run("plain", () => plain, {
        input_ids: batch.feeds[VLLM_INPUTS.inputIds],
        attention_mask: batch.attentionMask,
      });
      assert.ok(relErr(ours.logits, ref.logits) <= 1e-6);
      assert.ok(relErr(ours.layerOut[0], ref["layer_out.0"]) <= 1e-6);
    });
  });
}

Deno.test("blip-2: gradient of the label loss w.r.t. a residual at layer 0 matches finite differences", async () => {
  await withRunner("blip-2", async (vllm, runner) => {
    const batch = await vllm.prepare(REQUESTS);
    const layer = 0;
    const hidden = await runner.hiddenAt(batch, layer);
    const { logits: original } = await runner.forward(batch);
    const [b, T, d] = hidden.shape;
    const residual = randn([b, T, d], new Rng(3), { std: 0.1 });
    const n = VLLM_INPUTS;
    const { gradient, loss } = await runner.run("grad", () => {
      const g = new Graph();
      const h = g.input(n.hidden, "f32", ["batch", "seq", d]);
      const r = g.input(n.residual, "f32", ["batch", "seq", d]);
      const mask = g.input(n.attentionMask, "i64", ["batch", "seq"]);
      const ids = g.input(n.labelIds, "i64", ["batch", "labels"]);
      const masks = g.input(n.labelMasks, "i64", ["batch", "labels"]);
      const value = labelLoss(vllm.continueFrom(layer, op.add(h, r), mask), ids, masks);
      return { graph: g, outputs: { loss: value, gradient: grad(value, [r])[0] } };
    }, {
      [n.hidden]: hidden,
      [n.residual]: residual,
      [n.attentionMask]: batch.attentionMask,
      [n.labelIds]: batch.labelIds,
      [n.labelMasks]: batch.labelMasks,
    });
    const at = (r: Tensor) => runner.losses(layer, batch, hidden, r, original);
    const base = await at(residual);
    assert.ok(Math.abs(base.labelLoss - Number(loss.data[0])) <= 1e-6 * Math.abs(base.labelLoss));
    assert.ok(base.klLoss > 0); // the residual changes the distribution
    const eps = 1e-2;
    // a vision token (seen by later positions), the last prompt token of each row, a padding slot
    const picks = [[0, 2, 5], [0, batch.promptEnds[0] - 1, 7], [1, batch.promptEnds[1] - 1, 11]];
    let checked = 0;
    for (const [row, pos, k] of picks) {
      const i = (row * T + pos) * d + k;
      const shifted = (delta: number) => {
        const data = Float32Array.from(residual.data as Float32Array);
        data[i] += delta;
        return new Tensor("f32", residual.shape, data);
      };
      const fd = ((await at(shifted(eps))).labelLoss - (await at(shifted(-eps))).labelLoss) /
        (2 * eps);
      const g = (gradient.data as Float32Array)[i];
      assert.ok(
        Math.abs(fd - g) <= 2e-3 + 1e-2 * Math.abs(g),
        `(${row}, ${pos}, ${k}): ${fd} vs ${g}`,
      );
      if (Math.abs(g) > 1e-3) checked++;
    }
    assert.ok(checked >= 2, "the gradient is not zero where the loss depends on the residual");
  });
});

Deno.test("loadVllm: unsupported model_type and missing weights are errors naming the file", async () => {
  await withTempDir(async (dir) => {
    await writeTinyVllm("minigpt4", dir);
    const config = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
    await Deno.writeTextFile(
      `${dir}/config.json`,
      JSON.stringify({ ...config, model_type: "qwen2_vl" }),
    );
    await assert.rejects(loadVllm(dir), /unsupported model_type 'qwen2_vl' in .*config\.json/);
    await Deno.writeTextFile(
      `${dir}/config.json`,
      JSON.stringify({ ...config, num_query_tokens: 5 }),
    );
    await assert.rejects(
      loadVllm(dir),
      /model\.safetensors: tensor 'query_tokens' has shape \[1, 4, 32\], expected \[1, 5, 32\]/,
    );
  });
});

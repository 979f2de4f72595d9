import assert from "node:assert/strict";
import { Graph } from "../../../src/graph/ir.ts";
import {
  type EditedLogits,
  lastPositionsHost,
  layerReps,
  LiveEditModel,
  LiveEditTrainer,
  requestParts,
  routeInputs,
  sampleKLLoss,
  sampleLabelLoss,
  stepLosses,
  stepSampling,
  targetPredictions,
} from "../../../src/editors/liveedit/mod.ts";
import { toNumbers } from "../../../src/tensor/elements.ts";
import { checkBackbone } from "../../../src/editors/liveedit/backbone.ts";
import { compileRunner } from "../../../src/graph/runner.ts";
import { maxAbsDiff, relErr } from "../../../src/tensor/compare.ts";
import { randn } from "../../../src/tensor/create.ts";
import { Rng } from "../../../src/tensor/rng.ts";
import { Tensor } from "../../../src/tensor/tensor.ts";
import type { PreparedBatch } from "../../../src/models/vllm/processor.ts";
import { realPositions } from "./_metrics.ts";
import { strongParams, syntheticSamples, withTinyBackbone } from "./_tiny_backbone.ts";

/** Naive per-sample losses on host arrays (last L positions, mean per row, mean of rows). */
function naiveLosses(
  logits: Float32Array,
  original: Float32Array,
  ids: number[],
  masks: number[],
  b: number,
  T: number,
  V: number,
  L: number,
) {
  const logSoftmax = (x: Float32Array, at: number) => {
    const row = Array.from(x.subarray(at, at + V));
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
    return row.map((v) => v - lse);
  };
  let ce = 0, kl = 0;
  for (let r = 0; r < b; r++) {
    let ceRow = 0, klRow = 0, n = 0;
    for (let c = 0; c < L; c++) {
      if (!masks[r * L + c]) continue;
      const at = (r * T + T - L + c) * V;
      const lp = logSoftmax(logits, at), lq = logSoftmax(original, at);
      ceRow -= lp[ids[r * L + c]];
      klRow += lp.reduce((s, v, i) => s + Math.exp(v) * (v - lq[i]), 0);
      n++;
    }
    ce += ceRow / n / b;
    kl += klRow / n / b;
  }
  return { ce, kl };
}

Deno.test("sampleLabelLoss / sampleKLLoss equal a naive per-sample mean (<= 1e-5 relative)", async () => {
  const b = 2, T = 6, V = 7, L = 3;
  const rng = new Rng(3);
  const logits = randn([b, T, V], rng), original = randn([b, T, V], rng);
  const ids = [1, 4, 6, 0, 2, 5], masks = [1, 1, 0, 0, 1, 1];
  const g = new Graph();
  const lv = g.input("logits", "f32", ["b", "t", V]);
  const ov = g.input("original", "f32", ["b", "t", V]);
  const iv = g.input("ids", "i64", ["b", "l"]);
  const mv = g.input("masks", "i64", ["b", "l"]);
  const runner = await compileRunner(g, {
    ce: sampleLabelLoss(lv, iv, mv),
    kl: sampleKLLoss(lv, ov, mv),
  });
  try {
    const i64 = (x: number[]) => new Tensor("i64", [b, L], BigInt64Array.from(x.map(BigInt)));
    const out = await runner.run({ logits, original, ids: i64(ids), masks: i64(masks) });
    const want = naiveLosses(logits.data, original.data, ids, masks, b, T, V, L);
    assert.ok(Math.abs(Number(out.ce.data[0]) - want.ce) <= 1e-5 * Math.abs(want.ce));
    assert.ok(Math.abs(Number(out.kl.data[0]) - want.kl) <= 1e-5 * Math.abs(want.kl));
    assert.ok(want.kl > 0.1, "the two logit sets differ");
  } finally {
    await runner.release();
  }
});

Deno.test("requestParts splits prompt + target into pre-vision, vision, query, answer", async () => {
  await withTinyBackbone(async ({ dir, vllm }) => {
    const [s] = await syntheticSamples(dir, 1);
    const batch = await vllm.prepare([s.request, s.generality.text_rephrase]);
    const tok = await vllm.tokenizer();
    for (const [r, ex] of [s.request, s.generality.text_rephrase].entries()) {
      const [pre, vision, query, answer] = requestParts(batch, r, `row ${r}`);
      const n = vllm.numImageTokens;
      assert.deepEqual([pre, vision], [[0, 0], [0, n]]); // BLIP-2: the image comes first
      // query = the prompt's tokens (with BOS) up to and including its last token
      assert.equal(query[1] - query[0], tok.encode(ex.prompt).length);
      assert.deepEqual(
        batch.layouts[r].ids.slice(answer[0], answer[1]),
        tok.encode(ex.prompt + " " + ex.target).slice(query[1] - n),
      );
      assert.equal(answer[1], batch.lengths[r]);
    }
    const text = await vllm.prepare([s.locality.text_loc]);
    assert.throws(
      () => requestParts(text, 0, "the text example"),
      /the text example: has no image/,
    );
  });
});

Deno.test("targetPredictions reads the argmax at the label positions", () => {
  // b = 1, T = 4, V = 3, labels of length 2 (last two positions), second masked out
  const logits = new Tensor(
    "f32",
    [1, 4, 3],
    Float32Array.from([9, 0, 0, 9, 0, 0, 0, 0, 5, 0, 7, 0]),
  );
  const batch = {
    labelIds: new Tensor("i64", [1, 2], BigInt64Array.from([2n, 1n])),
    labelMasks: new Tensor("i64", [1, 2], BigInt64Array.from([1n, 0n])),
  } as PreparedBatch;
  assert.deepEqual(targetPredictions(logits, batch), [{ predicted: [2], target: [2] }]);
});

Deno.test(
  "residual placement: the training graph's continuation from H + residual at l_e + 1 gives predict()'s logits (<= 1e-5)",
  async () => {
    await withTinyBackbone(async ({ dir, runner, config }) => {
      const samples = await syntheticSamples(dir, 3);
      const params = strongParams(config);
      const trainer = LiveEditTrainer.create({ runner, config, seed: 0, params });
      const model = await LiveEditModel.create({ runner, config, params, modelName: "tiny" });
      try {
        for (const s of samples) await model.edit(s.request); // pool row k = request k
        const groups = {
          rel: samples.map((s) => s.request),
          gen_text: samples.map((s) => s.generality.text_rephrase),
          loc: samples.map((s) => s.locality.image_loc),
        };
        const inference: Record<string, EditedLogits> = {};
        for (const [k, xs] of Object.entries(groups)) inference[k] = await model.editedLogits(xs);
        const routed = (k: string) => {
          const m = inference[k].retrievalMap, n = m.shape[1];
          return samples.map((_, r) => [...m.data.subarray(r * n, (r + 1) * n)].map(Boolean));
        };
        assert.ok(routed("rel").flat().some((x) => x), "some request routes to an expert");
        const sampling = {
          ...stepSampling(0, 1, samples.length),
          masks: { rel: routed("rel"), gen: routed("gen_text"), loc: routed("loc") },
        };
        const prepared = await trainer.prepare(samples);
        const out = await trainer.evaluate(prepared, { logits: true }, sampling);
        for (const [k, inf] of Object.entries(inference)) {
          const mask = inf.batch.attentionMask;
          const want = realPositions(inf.logits, mask);
          const got = realPositions(out[`logits/${k}`], mask);
          assert.ok(relErr(got, want) <= 1e-5, `${k}: relErr ${relErr(got, want)}`);
        }
        // ... and the residual matters: the routed requests' logits differ from the unedited ones
        await model.restore();
        const unedited = await model.editedLogits(groups.rel);
        const mask = unedited.batch.attentionMask;
        assert.ok(
          maxAbsDiff(realPositions(unedited.logits, mask), realPositions(out["logits/rel"], mask)) >
            1e-2,
        );
      } finally {
        await model.close();
        await trainer.close();
      }
    });
  },
);

Deno.test("checkBackbone: a config that does not fit the VLLM names the field and the layer path", async () => {
  await withTinyBackbone(({ runner, config }) => {
    const n = runner.vllm.numLayers;
    assert.doesNotThrow(() => checkBackbone(config, runner));
    assert.throws(
      () => checkBackbone({ ...config, editLayerI: n }, runner),
      new RegExp(
        `edit_layer_i ${n} is not a decoder layer .*\\(${n} layers, ` +
          `language_model\\.model\\.decoder\\.layers\\.0 to language_model\\.model\\.decoder\\.layers\\.${
            n - 1
          }\\)`,
      ),
    );
    const dims = { ...config.dims, llmMidDim: config.dims.llmMidDim + 1 };
    assert.throws(
      () => checkBackbone({ ...config, dims }, runner),
      new RegExp(
        `^Error: LiveEdit config for ${config.editModelName} \\(shipped configs/tiny\\.json\\): ` +
          "llm_mid_dim .* differs",
      ),
    );
    return Promise.resolve();
  });
});

Deno.test(
  "editLayerTwice: the released code's training continues from layer l_e applied again to H plus the residual; built by hand from the model's stage graphs (<= 1e-6)",
  async () => {
    await withTinyBackbone(async ({ dir, runner, config }) => {
      const layer = config.editLayerI;
      const twiceConfig = { ...config, train: { ...config.train, editLayerTwice: true } };
      const samples = await syntheticSamples(dir, 3);
      const params = strongParams(config);
      const once = LiveEditTrainer.create({ runner, config, seed: 0, params });
      const twice = LiveEditTrainer.create({ runner, config: twiceConfig, seed: 0, params });
      const model = await LiveEditModel.create({ runner, config, params, modelName: "tiny" });
      try {
        for (const s of samples) await model.edit(s.request); // pool row k = request k
        const groups = {
          rel: samples.map((s) => s.request),
          gen_text: samples.map((s) => s.generality.text_rephrase),
          loc: samples.map((s) => s.locality.image_loc),
        };
        // By hand: H at l_e, the inference residual routed over the pool, layer l_e applied to
        // H once more through the model's own stage graph [l_e, l_e + 1), then the rest.
        const want: Record<string, { logits: Tensor; unedited: Tensor; batch: PreparedBatch }> = {};
        const routedMasks: Record<string, boolean[][]> = {};
        for (const [k, xs] of Object.entries(groups)) {
          const { batch, hidden } = await layerReps(runner, layer, xs);
          const routed = await model.session.route(hidden, routeInputs(batch));
          const residual = new Tensor(
            "f32",
            hidden.shape,
            hidden.data.map((h, i) => routed.output.data[i] - h),
          );
          const again = (await runner.stage(layer, layer + 1, batch, hidden)).hidden;
          want[k] = {
            logits: await runner.logitsFrom(layer, again, batch.attentionMask, residual),
            unedited: await runner.logitsFrom(layer, again, batch.attentionMask),
            batch,
          };
          const m = routed.retrievalMap, n = m.shape[1];
          routedMasks[k] = samples.map((_, r) =>
            [...m.data.subarray(r * n, (r + 1) * n)].map(Boolean)
          );
        }
        assert.ok(routedMasks.rel.flat().some((x) => x), "some request routes to an expert");
        const sampling = {
          ...stepSampling(0, 1, samples.length),
          masks: { rel: routedMasks.rel, gen: routedMasks.gen_text, loc: routedMasks.loc },
        };
        const prepared = await twice.prepare(samples);
        const out = await twice.evaluate(prepared, { logits: true }, sampling);
        for (const [k, w] of Object.entries(want)) {
          const mask = w.batch.attentionMask;
          const err = relErr(
            realPositions(out[`logits/${k}`], mask),
            realPositions(w.logits, mask),
          );
          assert.ok(err <= 1e-6, `${k}: relErr ${err}`);
        }
        // the pre-edit locality logits are the twice-applied unedited model's
        const L = prepared.tensors["loc/label_ids"].shape[1];
        const original = lastPositionsHost(want.loc.unedited as Tensor<"f32">, L);
        const errOriginal = relErr(prepared.tensors["loc/original_logits"], original);
        assert.ok(errOriginal <= 1e-6, `loc/original_logits: relErr ${errOriginal}`);
        // ... and the losses are those of these logits
        const [b, T, V] = want.rel.logits.shape;
        const naive = naiveLosses(
          want.rel.logits.data as Float32Array,
          want.rel.logits.data as Float32Array,
          [...toNumbers(want.rel.batch.labelIds)],
          [...toNumbers(want.rel.batch.labelMasks)],
          b,
          T,
          V,
          want.rel.batch.labelIds.shape[1],
        );
        const rel = toNumbers(out["loss/rel"])[0];
        assert.ok(
          Math.abs(rel - naive.ce) <= 1e-5 * Math.abs(naive.ce),
          `rel ${rel} vs ${naive.ce}`,
        );
        // The default (one pass) gives other losses on the same batch and sampling.
        const a = stepLosses(await once.evaluate(prepared, {}, sampling));
        const t = stepLosses(out);
        for (const part of ["rel", "gen_text", "gen_image", "loc"]) {
          assert.ok(
            Math.abs(a.parts[part] - t.parts[part]) > 1e-3,
            `${part}: ${a.parts[part]} (once) vs ${t.parts[part]} (twice)`,
          );
        }
        assert.equal(a.parts.soft, t.parts.soft, "the routing losses do not see the backbone");
      } finally {
        await model.close();
        await once.close();
        await twice.close();
      }
    });
  },
);

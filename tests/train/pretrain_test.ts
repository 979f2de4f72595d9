import assert from "node:assert/strict";
import { join } from "node:path";
import { answeredExamples } from "../../src/data/synthetic/answers.ts";
import { writeSynthetic } from "../../src/data/synthetic/write.ts";
import { writeTinyModel } from "../../src/models/tiny/write.ts";
import { loadVllm, VllmRunner } from "../../src/models/vllm/mod.ts";
import { placeVllm } from "../../src/models/vllm/place.ts";
import { VLLM_INPUTS } from "../../src/models/vllm/processor.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { pretrainGraph, pretrainUntil, VllmPretrainer } from "../../src/train/pretrain.ts";

/** A tiny BLIP-2 and a few synthetic questions in a temporary directory. */
async function withSetup(
  fn: (s: { runner: VllmRunner; dataRoot: string; dir: string }) => Promise<void>,
) {
  const dir = await Deno.makeTempDir({ prefix: "liveedit-pretrain-" });
  try {
    const dataRoot = join(dir, "data");
    await writeSynthetic(dataRoot, { nTrain: 8, nEval: 4, seed: 1, imageSize: 32 });
    const model = await writeTinyModel(join(dir, "model"), { arch: "blip2-opt", seed: 2 });
    const vllm = await loadVllm(model.dir);
    const runner = new VllmRunner(vllm, { cacheDir: join(dir, "graphs") });
    try {
      await fn({ runner, dataRoot, dir });
    } finally {
      await runner.close();
      vllm.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Host cross-entropy of the answer tokens and their argmax accuracy, from full logits. */
function hostLoss(logits: Tensor, ids: Tensor<"i64">, masks: Tensor<"i64">) {
  const [b, T, V] = logits.shape, L = ids.shape[1];
  const x = logits.data as Float32Array;
  let loss = 0, hits = 0, n = 0;
  for (let r = 0; r < b; r++) {
    for (let c = 0; c < L; c++) {
      if (masks.data[r * L + c] === 0n) continue;
      const row = x.subarray((r * T + T - L + c) * V, (r * T + T - L + c + 1) * V);
      const max = Math.max(...row);
      const lse = max + Math.log(row.reduce((a, v) => a + Math.exp(v - max), 0));
      const label = Number(ids.data[r * L + c]);
      loss += lse - row[label];
      hits += row.indexOf(max) === label ? 1 : 0;
      n += 1;
    }
  }
  return { loss: loss / n, accuracy: hits / n };
}

Deno.test("pretrainGraph: the loss of the model's own logits, gradients = central differences", async () => {
  await withSetup(async ({ runner, dataRoot }) => {
    const vllm = runner.vllm;
    const examples = (await answeredExamples(dataRoot, "train")).filter((e) => e.image !== null)
      .slice(0, 6);
    const batch = await vllm.prepare(examples);
    const ck = vllm.dir.checkpoint;
    const weights: Record<string, Tensor<"f32">> = {};
    for (const n of ck.listTensors()) weights[n] = await ck.readAs(n, "f32");
    const feeds = (w: Record<string, Tensor>) => ({
      ...batch.feeds,
      [VLLM_INPUTS.labelIds]: batch.labelIds,
      [VLLM_INPUTS.labelMasks]: batch.labelMasks,
      ...w,
    });
    const out = await runner.run(
      "t:grads",
      () => pretrainGraph(vllm, { image: true, grads: true }),
      feeds(weights),
    );
    const { logits } = await runner.stage(0, vllm.numLayers, batch);
    const host = hostLoss(logits!, batch.labelIds, batch.labelMasks);
    assert.ok(
      Math.abs(Number(out.loss.data[0]) - host.loss) < 1e-4,
      `${out.loss.data[0]} vs ${host.loss}`,
    );
    assert.equal(Number(out.correct.data[0]) / Number(out.count.data[0]), host.accuracy);
    // every weight is an input and has a gradient
    const graph = pretrainGraph(vllm, { image: true, grads: true });
    assert.deepEqual([...graph.weights].sort(), ck.listTensors().sort());
    // central differences (f32 forward, h = 1e-2) on the largest gradient element of weights
    // from every part: ViT, query tokens, Q-Former, projection, OPT
    const names = [
      "vision_model.embeddings.patch_embedding.weight",
      "query_tokens",
      "qformer.encoder.layer.0.crossattention.attention.value.weight",
      "language_projection.weight",
      "language_model.model.decoder.embed_tokens.weight",
      "language_model.model.decoder.layers.3.fc2.weight",
    ];
    for (const name of names) {
      const g = out[`grad/${name}`].data as Float32Array;
      let k = 0;
      for (let i = 1; i < g.length; i++) if (Math.abs(g[i]) > Math.abs(g[k])) k = i;
      const at = async (d: number) => {
        const t = new Tensor("f32", weights[name].shape, weights[name].data.slice());
        t.data[k] += d;
        const o = await runner.run(
          "t:loss",
          () => pretrainGraph(vllm, { image: true, grads: false }),
          feeds({ ...weights, [name]: t }),
        );
        return Number(o.loss.data[0]);
      };
      const h = 1e-2, numeric = (await at(h) - await at(-h)) / (2 * h);
      assert.ok(
        Math.abs(numeric - g[k]) <= 0.02 * Math.abs(g[k]) + 1e-4,
        `${name}[${k}]: analytic ${g[k]}, numeric ${numeric}`,
      );
    }
  });
});

Deno.test("VllmPretrainer: steps lower the loss of a batch and fit it; scoring changes nothing", async () => {
  await withSetup(async ({ runner, dataRoot }) => {
    const examples = (await answeredExamples(dataRoot, "train")).slice(0, 10); // 2 text-only
    const trainer = await VllmPretrainer.create(runner);
    const before = await trainer.score(examples, 4);
    const whole = await trainer.score(examples, 16);
    assert.ok(Math.abs(whole.loss - before.loss) < 1e-5, "batching does not change scores");
    assert.deepEqual([whole.accuracy, whole.tokens], [before.accuracy, before.tokens]);
    const first = await trainer.step(examples, 3e-3);
    assert.ok(Math.abs(first.loss - before.loss) < 1e-4, "a step reports the loss before it");
    let last = first;
    for (let i = 0; i < 40; i++) last = await trainer.step(examples, 3e-3);
    const after = await trainer.score(examples, 4);
    assert.ok(after.loss < before.loss / 4, `loss ${before.loss} -> ${after.loss}`);
    assert.equal(after.accuracy, 1);
    assert.equal(trainer.stepCount, 41);
    assert.ok(Number.isFinite(last.loss));
  });
});

Deno.test("pretrainUntil: stops at the target, reports the held-out score; checks its inputs", async () => {
  await withSetup(async ({ runner, dataRoot }) => {
    const examples = (await answeredExamples(dataRoot, "train")).slice(0, 10);
    const trainer = await VllmPretrainer.create(runner);
    const evals: number[] = [];
    const result = await pretrainUntil(trainer, {
      examples,
      heldOut: examples,
      batchSize: 10,
      maxSteps: 200,
      lr: 3e-3,
      evalEvery: 10,
      target: 0.9,
      seed: 0,
      onEval: (step) => evals.push(step),
    });
    assert.ok(result.reached && result.heldOut.accuracy >= 0.9, JSON.stringify(result));
    assert.ok(result.steps < 200 && result.steps % 10 === 0);
    assert.deepEqual(evals.at(-1), result.steps);
    await assert.rejects(
      pretrainUntil(trainer, {
        ...{
          examples: [],
          heldOut: examples,
          batchSize: 1,
          maxSteps: 1,
          lr: 0,
          evalEvery: 1,
          seed: 0,
        },
      }),
      /no training examples/,
    );
  });
});

Deno.test("VllmPretrainer on two CPU workers: the losses, scores and weights of one runner", async () => {
  await withSetup(async ({ runner, dataRoot, dir }) => {
    const examples = (await answeredExamples(dataRoot, "train")).slice(0, 15); // 3 text-only
    const cacheDir = join(dir, "graphs");
    const placed = [
      await placeVllm(runner.vllm, { devices: ["cpu:0"], workers: true, cacheDir }),
      await placeVllm(runner.vllm, { devices: ["cpu:1"], workers: true, cacheDir }),
    ];
    try {
      const one = await VllmPretrainer.create(runner);
      const two = await VllmPretrainer.create(placed.map((p) => p.runner));
      assert.equal(two.runners.length, 2);
      for (let i = 0; i < 3; i++) {
        const a = await one.step(examples, 3e-3), b = await two.step(examples, 3e-3);
        assert.ok(
          Math.abs(a.loss - b.loss) <= 1e-5 * Math.abs(a.loss),
          `step ${i}: ${a.loss} ${b.loss}`,
        );
        assert.equal(a.tokens, b.tokens);
      }
      // Adam moves an element whose gradient is about 0 by up to lr either way, so a rounding
      // difference in such a gradient may show; the other elements agree to 1e-5
      let off = 0, total = 0;
      for (const [name, w] of Object.entries(one.weights())) {
        const v = two.weights()[name].data;
        w.data.forEach((x, k) => off += Math.abs(x - v[k]) > 1e-5 ? 1 : 0);
        total += w.size;
      }
      assert.ok(off <= 0.01 * total, `${off} of ${total} weights differ by more than 1e-5`);
      const [s1, s2] = [await one.score(examples, 4), await two.score(examples, 4)];
      assert.deepEqual([s2.accuracy, s2.tokens], [s1.accuracy, s1.tokens]);
      assert.ok(Math.abs(s1.loss - s2.loss) <= 1e-5 * s1.loss, `${s1.loss} ${s2.loss}`);
      await assert.rejects(VllmPretrainer.create([]), /no runner given/);
    } finally {
      for (const p of placed) await p.close();
    }
  });
});

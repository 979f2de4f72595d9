import assert from "node:assert/strict";
import { join } from "node:path";
import {
  createLiveEditTrainer,
  LiveEditTrainer,
  LOSS_PARTS,
  stepSampling,
} from "../../../src/editors/liveedit/mod.ts";
import type { PreparedTrainBatch, StepLosses } from "../../../src/train/trainer.ts";
import { Tensor } from "../../../src/tensor/tensor.ts";
import { syntheticSamples, withTinyBackbone } from "./_tiny_backbone.ts";

Deno.test("prepare: host tensors of every group, pre-edit locality logits at the label positions", async () => {
  await withTinyBackbone(async ({ dir, runner, config, vllm }) => {
    const samples = await syntheticSamples(dir, 2);
    const trainer = LiveEditTrainer.create({ runner, config, seed: 0 });
    const p = await trainer.prepare(samples);
    const d = vllm.hiddenSize, V = vllm.config.vocabSize;
    for (const g of ["rel", "gen_text", "gen_image", "loc"]) {
      const h = p.tensors[`${g}/hidden`];
      assert.equal(h.shape[0], 2);
      assert.equal(h.shape[2], d);
      assert.deepEqual(p.tensors[`${g}/attention_mask`].shape, h.shape.slice(0, 2));
    }
    const L = p.tensors["loc/label_ids"].shape[1];
    assert.deepEqual(p.tensors["loc/original_logits"].shape, [2, L, V]);
    // the original logits are the unedited model's at the last L positions
    const batch = await vllm.prepare(samples.map((s) => s.locality.image_loc));
    const full = (await runner.forward(batch)).logits;
    const T = full.shape[1];
    const want = (full.data as Float32Array).subarray((T - L) * V, T * V);
    const got = (p.tensors["loc/original_logits"].data as Float32Array).subarray(0, L * V);
    assert.ok(want.every((v, i) => Math.abs(v - got[i]) <= 1e-5 * (1 + Math.abs(v))));
    // JSON-able info, and a pure function of the batch
    assert.deepEqual(JSON.parse(JSON.stringify(p.info)), p.info);
    const again = await trainer.prepare(samples);
    assert.deepEqual(again.tensors["rel/hidden"].data, p.tensors["rel/hidden"].data);
  });
});

Deno.test("stepSampling: a function of (seed, step); masks of spec §4", () => {
  const a = stepSampling(7, 3, 4), b = stepSampling(7, 3, 4), c = stepSampling(7, 4, 4);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  a.masks.rel.forEach((row, j) => assert.ok(row[j], "reliability uses its own expert"));
  a.neighbourPairs.forEach(([x, y], j) => assert.deepEqual([x.index, y.index], [j, j]));
});

Deno.test("resume: N steps = N/2 steps + state()/load() into a fresh trainer + N/2 steps, exactly", async () => {
  await withTinyBackbone(async ({ dir, runner, config }) => {
    const samples = await syntheticSamples(dir, 4);
    const first = LiveEditTrainer.create({ runner, config, seed: 5 });
    const batches = [
      await first.prepare(samples.slice(0, 2)),
      await first.prepare(samples.slice(2)),
    ];
    const N = 6, lr = config.train.lr;
    const run = async (t: LiveEditTrainer, from: number, to: number) => {
      const out: StepLosses[] = [];
      for (let i = from; i < to; i++) out.push(await t.step(batches[i % 2], lr));
      return out;
    };
    const straight = await run(first, 0, N);
    const a = LiveEditTrainer.create({ runner, config, seed: 5 });
    const head = await run(a, 0, N / 2);
    const saved = a.state();
    await run(a, N / 2, N / 2 + 1); // moves on: the saved state must be a copy
    const b = LiveEditTrainer.create({ runner, config, seed: 5, params: a.parameters() });
    b.load(saved);
    assert.equal(b.stepCount, N / 2);
    const tail = await run(b, N / 2, N);
    assert.deepEqual([...head, ...tail], straight);
    assert.deepEqual(b.state(), first.state());
    assert.notDeepEqual(straight[0], straight[N - 1], "the losses move");
  });
});

Deno.test("a NaN loss part throws naming the step and the part; the weights stay as they were", async () => {
  await withTinyBackbone(async ({ dir, runner, config }) => {
    const samples = await syntheticSamples(dir, 2);
    const trainer = LiveEditTrainer.create({ runner, config, seed: 0 });
    const good = await trainer.prepare(samples);
    await trainer.step(good, config.train.lr);
    const before = trainer.state();
    const original = good.tensors["loc/original_logits"];
    const poisoned: PreparedTrainBatch = {
      info: good.info,
      tensors: {
        ...good.tensors,
        "loc/original_logits": new Tensor(
          "f32",
          original.shape,
          (original.data as Float32Array).map((v, i) => (i === 3 ? NaN : v)),
        ),
      },
    };
    await assert.rejects(
      () => trainer.step(poisoned, config.train.lr),
      /LiveEdit training step 2: loss part 'loc' is NaN \(weights not updated\)/,
    );
    assert.deepEqual(trainer.state(), before);
    // the next good step is step 2 again
    const losses = await trainer.step(good, config.train.lr);
    assert.deepEqual(Object.keys(losses.parts), [...LOSS_PARTS]);
    assert.equal(trainer.stepCount, 2);
  });
});

Deno.test("prepared batches and states are checked: errors name the tensor", async () => {
  await withTinyBackbone(async ({ dir, runner, config }) => {
    const samples = await syntheticSamples(dir, 1);
    const trainer = LiveEditTrainer.create({ runner, config, seed: 0 });
    const p = await trainer.prepare(samples);
    const { "gen_image/label_ids": _, ...rest } = p.tensors;
    await assert.rejects(
      () => trainer.step({ info: p.info, tensors: rest }, 1e-3),
      /tensor 'gen_image\/label_ids' is missing/,
    );
    const state = trainer.state();
    const { "moegen_r.phi": __, ...weights } = state.weights;
    assert.throws(() => trainer.load({ ...state, weights }), /parameter 'moegen_r.phi' is missing/);
  });
});

Deno.test("extra devices: prepare runs in cpu:1's worker, the step in cpu:0's, with the same losses", async () => {
  await withTinyBackbone(async ({ dir, runner, config, vllm }) => {
    const samples = await syntheticSamples(dir, 2);
    const local = LiveEditTrainer.create({ runner, config, seed: 3 });
    const cacheDir = join(dir, "graphs");
    const split = await createLiveEditTrainer({
      model: vllm,
      config,
      seed: 3,
      devices: ["cpu:0"],
      extraDevices: ["cpu:1"],
      cacheDir,
    });
    try {
      assert.equal(split.prepareRunners.length, 1);
      assert.notEqual(split.prepareRunners[0], split.runner);
      const a = await local.prepare(samples);
      const b = await split.prepare(samples);
      const close = (x: Tensor, y: Tensor) =>
        (x.data as Float32Array).every((v, i) =>
          Math.abs(v - (y.data as Float32Array)[i]) <= 1e-5 * (1 + Math.abs(v))
        );
      assert.ok(close(a.tensors["rel/hidden"], b.tensors["rel/hidden"]));
      const la = await local.step(a, config.train.lr);
      const lb = await split.step(b, config.train.lr);
      for (const part of Object.keys(la.parts)) {
        assert.ok(
          Math.abs(la.parts[part] - lb.parts[part]) <= 1e-5 * (1 + Math.abs(la.parts[part])),
          `${part}: ${la.parts[part]} vs ${lb.parts[part]}`,
        );
      }
    } finally {
      await split.close();
    }
  });
});

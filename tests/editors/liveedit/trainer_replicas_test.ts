/**
 * Data-parallel training of LiveEdit (`train --replicas R`): the step graph on slices of a
 * batch, combined on the host, equals the step graph on the whole batch (losses and every
 * gradient), in-thread and with each replica in its own `cpu:N` Worker.
 *
 * @module
 */
import assert from "node:assert/strict";
import { basename, join } from "node:path";
import {
  createLiveEditTrainer,
  LiveEditTrainer,
  LOSS_PARTS,
  stepLosses,
  stepSampling,
} from "../../../src/editors/liveedit/mod.ts";
import { paramSpecs } from "../../../src/editors/liveedit/params.ts";
import { f32 } from "../../../src/runtime/outputs.ts";
import type { EditorTrainer, StepLosses } from "../../../src/train/trainer.ts";
import { loadCheckpoint } from "../../../src/train/checkpoint.ts";
import { TrainingError, trainLoop } from "../../../src/train/loop.ts";
import { DeviceWorker } from "../../../src/runtime/device_worker.ts";
import { VllmRunner } from "../../../src/models/vllm/mod.ts";
import { Rng } from "../../../src/tensor/rng.ts";
import { listFiles } from "../../train/_workspace.ts";
import { combineReplicas, replicaSlices } from "../../../src/train/data_parallel.ts";
import type { Tensor } from "../../../src/tensor/tensor.ts";
import { syntheticSamples, withTinyBackbone } from "./_tiny_backbone.ts";

/**
 * The total within 1e-6 of itself, and every part within 1e-6 of the total: a part near zero
 * (the locality KL of near-equal distributions) carries the rounding of the larger terms it is
 * computed from, so its own relative error can be larger.
 */
function assertSameLosses(a: StepLosses, b: StepLosses, what: string): void {
  const bound = 1e-6 * Math.abs(a.total);
  assert.ok(Math.abs(a.total - b.total) <= bound, `${what} total: ${a.total} vs ${b.total}`);
  for (const part of LOSS_PARTS) {
    const x = a.parts[part], y = b.parts[part];
    assert.ok(Math.abs(x - y) <= bound, `${what} ${part}: ${x} vs ${y}`);
  }
}

/**
 * The attention key biases: their gradient is zero in exact arithmetic (softmax over the keys
 * ignores a shift that is the same for every key, and `q·b_k` is), so what the graph computes
 * for them is float noise (~1e-10), which differs between any two summation orders.
 */
const KEY_BIAS = /\.k_mlp\.bias$/;

/** `max |a - b|` over two f32 tensors of one shape. */
function maxAbsDiff(a: Tensor, b: Tensor): number {
  assert.deepEqual(a.shape, b.shape);
  const x = a.data as Float32Array, y = b.data as Float32Array;
  let worst = 0;
  for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]));
  return worst;
}

Deno.test("the step graph on slices [0, 2) + [2, 3), weighted by size, is the step on the whole batch", async () => {
  await withTinyBackbone(async ({ dir, runner, config }) => {
    const samples = await syntheticSamples(dir, 3);
    const trainer = LiveEditTrainer.create({ runner, config, seed: 4 });
    const batch = await trainer.prepare(samples);
    const sampling = stepSampling(4, 1, 3);
    const whole = await trainer.evaluate(batch, {}, sampling);
    const slices = replicaSlices(3, 2);
    assert.deepEqual(slices, [{ start: 0, end: 2 }, { start: 2, end: 3 }]);
    const names = paramSpecs(config.dims).map((s) => s.name);
    const lossesOf = (out: Record<string, Tensor>) => {
      const { total, parts } = stepLosses(out);
      return [total, ...LOSS_PARTS.map((p) => parts[p])];
    };
    const results = [];
    for (const rows of slices) {
      const out = await trainer.evaluate(batch, {}, sampling, rows);
      results.push({
        losses: lossesOf(out),
        grads: Object.fromEntries(names.map((n) => [n, f32(out, `grad/${n}`)])),
      });
    }
    // a slice alone is not the whole batch (its rows differ), only the weighted sum is
    const want = lossesOf(whole);
    assert.notEqual(results[1].losses[0], want[0]);
    const combined = combineReplicas(slices, results);
    ["total", ...LOSS_PARTS].forEach((part, i) => {
      assert.ok(
        Math.abs(combined.losses[i] - want[i]) <= 1e-6 * Math.abs(want[i]),
        `${part}: ${combined.losses[i]} vs ${want[i]}`,
      );
    });
    for (const n of names) {
      const got = combined.grads[n].data, want = f32(whole, `grad/${n}`).data;
      if (KEY_BIAS.test(n)) {
        for (const g of [...got, ...want]) assert.ok(Math.abs(g) <= 1e-8, `grad/${n}: ${g}`);
        continue;
      }
      // 1e-5 of the tensor's scale: float32 sums over the batch in another order
      const scale = Math.max(...want.map(Math.abs));
      want.forEach((w, i) =>
        assert.ok(Math.abs(got[i] - w) <= 1e-5 * scale, `grad/${n}[${i}]: ${got[i]} vs ${w}`)
      );
    }
  });
});

Deno.test("--replicas 2 on cpu:0 and cpu:1 Workers: 4 steps give the losses and weights of one device", async () => {
  await withTinyBackbone(async ({ dir, runner, config, vllm }) => {
    const samples = await syntheticSamples(dir, 5);
    const single = LiveEditTrainer.create({ runner, config, seed: 9 });
    const replicated = await createLiveEditTrainer({
      model: vllm,
      config,
      seed: 9,
      devices: ["cpu:0", "cpu:1"],
      replicas: 2,
      cacheDir: join(dir, "graphs"),
    });
    try {
      assert.equal(replicated.replicas.length, 2);
      assert.equal(replicated.prepareRunners.length, 2, "batches are prepared on the replicas");
      const batches = [
        await single.prepare(samples.slice(0, 3)), // slices of 2 and 1
        await single.prepare(samples.slice(3)), // slices of 1 and 1
      ];
      const lr = config.train.lr;
      for (let i = 0; i < 4; i++) {
        const a = await single.step(batches[i % 2], lr);
        const b = await replicated.step(batches[i % 2], lr);
        assertSameLosses(a, b, `step ${i + 1}`);
      }
      // both replicas ran step graphs (and prepared nothing: the batches came from `single`)
      for (const r of replicated.replicas) assert.equal(r.stats.runs, 4);
      const wa = single.state(), wb = replicated.state();
      assert.equal(wb.adam.step, 4);
      // Adam divides every gradient element by its own RMS, so the float32 rounding of another
      // summation order reaches a weight relative to its update, not to the weight: within a
      // thousandth of the farthest Adam can move a weight in 4 steps (4 lr). The key biases'
      // gradients are float noise (see KEY_BIAS), which Adam turns into updates of up to
      // lr·|noise|/(|noise| + eps): they are left out.
      const bound = 1e-3 * 4 * lr;
      for (const [name, t] of Object.entries(wa.weights)) {
        if (KEY_BIAS.test(name)) continue;
        const err = maxAbsDiff(wb.weights[name], t);
        assert.ok(err <= bound, `${name}: ${err} > ${bound}`);
      }
    } finally {
      await replicated.close();
    }
  });
});

Deno.test("--replicas 2 over cpu:0..cpu:3: each replica is a 2-stage placement; the losses are one device's", async () => {
  await withTinyBackbone(async ({ dir, runner, config, vllm }) => {
    const samples = await syntheticSamples(dir, 3);
    const single = LiveEditTrainer.create({ runner, config, seed: 2 });
    const replicated = await createLiveEditTrainer({
      model: vllm,
      config,
      seed: 2,
      devices: ["cpu:0", "cpu:1", "cpu:2", "cpu:3"],
      replicas: 2,
      cacheDir: join(dir, "graphs"),
    });
    try {
      assert.deepEqual(replicated.replicas.map((r) => r.stages.length), [2, 2]);
      assert.ok(
        replicated.notes.some((l) => l.startsWith("replica 1")),
        replicated.notes.join("\n"),
      );
      const batch = await single.prepare(samples);
      for (let i = 0; i < 2; i++) {
        const a = await single.step(batch, config.train.lr);
        const b = await replicated.step(batch, config.train.lr);
        assertSameLosses(a, b, `step ${i + 1}`);
      }
    } finally {
      await replicated.close();
    }
  });
});

Deno.test("a replica's Worker that dies mid-run stops the run naming cpu:1; the last good state is a complete checkpoint", async () => {
  await withTinyBackbone(async ({ dir, config, vllm }) => {
    const samples = await syntheticSamples(dir, 4);
    const workers = [await DeviceWorker.open("cpu:0"), await DeviceWorker.open("cpu:1")];
    const runners = workers.map((worker) =>
      new VllmRunner(vllm, { worker, cacheDir: join(dir, "graphs") })
    );
    try {
      const trainer = LiveEditTrainer.create({
        runner: runners[0],
        replicas: runners,
        prepareRunners: runners,
        config,
        seed: 1,
      });
      let steps = 0;
      const dying: EditorTrainer = {
        parameters: () => trainer.parameters(),
        prepare: (batch) => trainer.prepare(batch),
        step: (batch, lr) => {
          if (++steps === 3) workers[1].close(); // replica 1's device goes away mid-run
          return trainer.step(batch, lr);
        },
        state: () => trainer.state(),
        load: (state) => trainer.load(state),
        close: () => trainer.close(),
      };
      const runDir = join(dir, "run");
      await Deno.mkdir(join(runDir, "logs"), { recursive: true });
      const error = await trainLoop({
        trainer: dying,
        schedule: () => config.train.lr,
        samples,
        batchSize: 2,
        epochs: 3,
        saveEvery: 100,
        logEvery: 1,
        emaAlpha: 0.1,
        bufferSize: 1,
        runDir,
        checkpointModel: "liveedit/tiny",
        rng: new Rng(0),
        print: () => {},
      }).then(() => null, (e) => e);
      assert.ok(error instanceof TrainingError, String(error));
      assert.match(
        error.message,
        /^training stopped at step 3 \(epoch 2\): .*cpu:1: device worker (is )?closed; saved a checkpoint of the last good state \(step 2\)/,
      );
      const ckpt = await loadCheckpoint(error.checkpoint!, { model: "liveedit/tiny" });
      assert.equal(ckpt.step, 2);
      const name = basename(error.checkpoint!, ".json");
      assert.deepEqual(await listFiles(join(runDir, "checkpoints")), [
        `${name}.json`,
        `${name}.safetensors`,
      ]);
    } finally {
      for (const r of runners) await r.close().catch(() => {});
      for (const w of workers) w.close();
    }
  });
});

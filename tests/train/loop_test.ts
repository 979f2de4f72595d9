import assert from "node:assert/strict";
import { join } from "node:path";
import { loadDataset } from "../../src/data/datasets.ts";
import type { EditSample } from "../../src/data/sample.ts";
import type { PreparedTrainBatch, StepLosses } from "../../src/train/trainer.ts";
import { latestCheckpoint } from "../../src/train/checkpoint.ts";
import { Progress } from "../../src/cli/progress.ts";
import { nonFiniteLoss, TrainingError, trainLoop } from "../../src/train/loop.ts";
import { createRunDir } from "../../src/train/records.ts";
import { stepCut } from "../../src/train/schedule.ts";
import { Rng } from "../../src/tensor/rng.ts";
import { FakeTrainer } from "./_fake_editor.ts";
import { makeWorkspace, withTempDir } from "./_workspace.ts";

/** Returns a NaN loss at step 3 without throwing (an update may have been applied). */
class ReturnsNaN extends FakeTrainer {
  #n = 0;
  override async step(batch: PreparedTrainBatch, lr: number): Promise<StepLosses> {
    const losses = await super.step(batch, lr);
    return ++this.#n === 3 ? { total: NaN, parts: { ...losses.parts, rel: NaN } } : losses;
  }
}

/** Fails to prepare the 4th batch. */
class FailsToPrepare extends FakeTrainer {
  #n = 0;
  override prepare(batch: readonly EditSample[]): Promise<PreparedTrainBatch> {
    return ++this.#n === 4
      ? Promise.reject(new Error("image decode failed"))
      : super.prepare(batch);
  }
}

async function setup(dir: string) {
  const ws = await makeWorkspace(dir, { records: 8 });
  const { samples } = await loadDataset("EVQA", "train", { dataRoot: ws.dataRoot });
  const runDir = await createRunDir(join(dir, "records"), "fake", "tiny", "run");
  return {
    samples,
    runDir,
    schedule: stepCut({ lr: 0.01, rate: 1, cuts: [] }),
    batchSize: 2,
    epochs: 2,
    saveEvery: 100,
    logEvery: 1,
    emaAlpha: 0.1,
    bufferSize: 2,
    checkpointModel: "fake/tiny",
    rng: new Rng(1),
    print: () => {},
    progress: (total: number, start: number) =>
      new Progress({ total, start, label: "t", tty: false, write: () => {} }),
  };
}

Deno.test("trainLoop: a NaN the trainer returns stops the run naming step and part, and saves no checkpoint", async () => {
  await withTempDir(async (dir) => {
    const o = await setup(dir);
    const error = await trainLoop({ ...o, trainer: new ReturnsNaN(1) }).catch((e) => e);
    assert.ok(error instanceof TrainingError);
    assert.match(error.message, /training stopped at step 3 \(epoch 1\): loss part "rel" is NaN/);
    assert.match(error.message, /no checkpoint was saved/);
    assert.equal(await latestCheckpoint(join(o.runDir, "checkpoints")), undefined);
  });
});

Deno.test("trainLoop: a failed prepare stops the run and checkpoints the steps done", async () => {
  await withTempDir(async (dir) => {
    const o = await setup(dir);
    const error = await trainLoop({ ...o, trainer: new FailsToPrepare(1) }).catch((e) => e);
    assert.ok(error instanceof TrainingError);
    assert.match(
      error.message,
      /step 4 \(epoch 1\): preparing the batch failed: image decode failed/,
    );
    assert.equal((await latestCheckpoint(join(o.runDir, "checkpoints")))?.step, 3);
    assert.equal(
      error.checkpoint,
      (await latestCheckpoint(join(o.runDir, "checkpoints")))?.jsonPath,
    );
  });
});

Deno.test("trainLoop refuses a resume past the end, and runs every batch of every epoch once", async () => {
  await withTempDir(async (dir) => {
    const o = await setup(dir);
    await assert.rejects(
      trainLoop({ ...o, trainer: new FakeTrainer(1), resume: { step: 8, emaLoss: 1 } }),
      /nothing to train: the run is at step 8 .* 8 steps/,
    );
    const seen: number[][] = [];
    const trainer = new FakeTrainer(1, { onPrepare: (b) => seen.push(b.map((s) => s.index)) });
    const r = await trainLoop({ ...o, trainer, concurrency: 2 });
    assert.equal(r.steps, 8);
    assert.equal(seen.length, 8);
    for (const epoch of [seen.slice(0, 4), seen.slice(4)]) {
      assert.deepEqual(epoch.flat().sort(), [0, 1, 2, 3, 4, 5, 6, 7], "each sample once per epoch");
    }
    assert.notDeepEqual(seen.slice(0, 4), seen.slice(4), "reshuffled per epoch");
  });
});

Deno.test("nonFiniteLoss names the first bad part, the total only when the parts are finite", () => {
  assert.equal(nonFiniteLoss({ total: 1, parts: { a: 1 } }), undefined);
  assert.deepEqual(nonFiniteLoss({ total: 1, parts: { a: 1, b: Infinity } }), ["b", Infinity]);
  assert.deepEqual(nonFiniteLoss({ total: NaN, parts: { a: 1 } }), ["total", NaN]);
  assert.deepEqual(nonFiniteLoss({ total: NaN, parts: { a: -Infinity } }), ["a", -Infinity]);
});

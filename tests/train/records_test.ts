import assert from "node:assert/strict";
import { join } from "node:path";
import { saveCheckpoint } from "../../src/train/checkpoint.ts";
import { Adam } from "../../src/train/adam.ts";
import {
  checkpointName,
  createRunDir,
  findCheckpoint,
  runDirOf,
  timestamp,
  trainName,
} from "../../src/train/records.ts";
import { Rng } from "../../src/tensor/rng.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { withTempDir } from "./_workspace.ts";

Deno.test("train names: <prefix>-<YYYY.MM.DD-HH.MM.SS> as the original", () => {
  const d = new Date(2025, 0, 2, 3, 4, 5);
  assert.equal(timestamp(d), "2025.01.02-03.04.05");
  assert.equal(trainName("EVQA", d), "EVQA-2025.01.02-03.04.05");
  assert.equal(trainName(undefined, d), "2025.01.02-03.04.05");
  assert.throws(() => trainName("a/b", d), /path separator/);
  assert.equal(checkpointName(2, 500, 0.123456), "epoch-2-i-500-ema_loss-0.1235");
});

Deno.test("createRunDir makes checkpoints/ and logs/ and never reuses a run's directory", async () => {
  await withTempDir(async (dir) => {
    const a = await createRunDir(join(dir, "records"), "liveedit", "m", "run");
    const b = await createRunDir(join(dir, "records"), "liveedit", "m", "run");
    assert.equal(a, join(dir, "records/liveedit/m/run"));
    assert.equal(b, join(dir, "records/liveedit/m/run-2"));
    for (const sub of ["checkpoints", "logs"]) {
      assert.ok((await Deno.stat(join(a, sub))).isDirectory);
    }
  });
});

Deno.test("findCheckpoint: a file, its stem, a checkpoints/ dir or a run dir (latest); errors name the path", async () => {
  await withTempDir(async (dir) => {
    const run = join(dir, "run");
    const ckpts = join(run, "checkpoints");
    const w = new Tensor("f32", [2], new Float32Array([1, 2]));
    const adam = new Adam({ w });
    for (const step of [2, 4]) {
      await saveCheckpoint(ckpts, checkpointName(1, step, 0.5), {
        model: "fake/m",
        weights: { w },
        adam: adam.state(),
        step,
        epoch: 1,
        emaLoss: 0.5,
        rng: new Rng(1).state(),
      });
    }
    const latest = join(ckpts, "epoch-1-i-4-ema_loss-0.5000.json");
    assert.equal(await findCheckpoint(run), latest);
    assert.equal(await findCheckpoint(ckpts), latest);
    const first = join(ckpts, "epoch-1-i-2-ema_loss-0.5000.json");
    assert.equal(await findCheckpoint(first), first);
    assert.equal(await findCheckpoint(first.replace(".json", ".safetensors")), first);
    assert.equal(await findCheckpoint(first.replace(".json", "")), first);
    assert.equal(runDirOf(first), run);
    assert.equal(runDirOf(join(dir, "x.json")), undefined);
    await assert.rejects(findCheckpoint(join(dir, "nope.json")), /nope\.json does not exist/);
    await Deno.mkdir(join(dir, "empty"));
    await assert.rejects(findCheckpoint(join(dir, "empty")), /no complete checkpoint in/);
  });
});

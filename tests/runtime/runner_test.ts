import assert from "node:assert/strict";
import { DeviceWorker } from "../../src/runtime/device_worker.ts";
import { f32 } from "../../src/runtime/outputs.ts";
import { ModelRunner, RunStats } from "../../src/runtime/runner.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { matmulModel, maxAbsDiff, naiveMatmul, randomF32 } from "./_models.ts";

const BOUND = 1e-5; // f32 MatMul vs f64 reference, k = 6, entries in [-1, 1)

Deno.test("ModelRunner picks its inputs from a larger feed set and counts runs and fed bytes", async () => {
  const { bytes } = matmulModel(6, 4);
  const totals = new RunStats();
  const mm = await ModelRunner.load(bytes, { name: "mm", totals });
  try {
    assert.deepEqual(mm.inputNames, ["a", "b"]);
    assert.equal(mm.device.name, "cpu");
    const a = randomF32([3, 6], 1), b = randomF32([6, 4], 2);
    const extra = new Tensor("i64", [100], new BigInt64Array(100));
    const out = await mm.run({ a, b, extra });
    assert.ok(maxAbsDiff(f32(out, "y").data, naiveMatmul(a, b)) <= BOUND);
    const fed = (3 * 6 + 6 * 4) * 4; // `extra` is not fed
    assert.deepEqual({ ...mm.stats }, { runs: 1, fedBytes: fed, lastFedBytes: fed });
    await mm.run({ a: randomF32([1, 6], 3), b });
    assert.equal(mm.stats.runs, 2);
    assert.equal(mm.stats.lastFedBytes, (6 + 24) * 4);
    assert.equal(totals.fedBytes, fed + (6 + 24) * 4, "the shared totals see both runs");
    await assert.rejects(mm.run({ a }), /session 'mm' on cpu: no feed for input 'b'/);
    assert.equal(mm.stats.runs, 2, "a run that never started is not counted");
  } finally {
    await mm.release();
  }
  await assert.rejects(mm.run({ a: randomF32([1, 6], 3), b: randomF32([6, 4], 2) }), /released/);
});

Deno.test("ModelRunner runs in a device Worker when given one", async () => {
  const { bytes } = matmulModel(6, 4);
  const cpu1 = await DeviceWorker.open("cpu:1");
  try {
    const mm = await ModelRunner.load(bytes, { name: "mm", worker: cpu1, device: "cpu:7" });
    assert.equal(mm.device.name, "cpu:1", "the worker's device wins");
    const a = randomF32([2, 6], 4), b = randomF32([6, 4], 5);
    const out = await mm.run({ a, b });
    assert.ok(maxAbsDiff(f32(out, "y").data, naiveMatmul(a, b)) <= BOUND);
    assert.equal(mm.stats.runs, 1);
    assert.throws(() => f32(out, "z"), /session 'mm' on cpu:1: output 'z' is missing/);
  } finally {
    cpu1.close();
  }
});

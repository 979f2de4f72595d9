import assert from "node:assert/strict";
import { Tensor } from "../../src/tensor/tensor.ts";
import { DeviceWorker } from "../../src/runtime/device_worker.ts";
import { inputsSpecOf } from "../../src/graph/runner.ts";
import {
  matmulModel,
  maxAbsDiff,
  naiveMatmul,
  randomF32,
  reshapeModel,
  unaryModel,
} from "./_models.ts";

const BOUND = 1e-4; // f32 MatMul vs f64 reference, k = 64, entries in [-1, 1)

Deno.test("cpu:0 and cpu:1 workers each run MatMul correctly, also concurrently", async () => {
  const { graph, bytes } = matmulModel(64, 16);
  const cpu0 = await DeviceWorker.open("cpu:0");
  const cpu1 = await DeviceWorker.open("cpu:1");
  try {
    const s0 = await cpu0.load(bytes, { name: "mm0", inputsSpec: inputsSpecOf(graph) });
    const s1 = await cpu1.load(bytes, { name: "mm1" });
    assert.equal(s0.device.name, "cpu:0");
    assert.equal(s1.device.name, "cpu:1");
    assert.deepEqual(s0.inputNames, ["a", "b"]);
    assert.deepEqual(s1.outputNames, ["y"]);
    assert.deepEqual(s1.inputs[0], { name: "a", dtype: "f32", shape: ["n", 64] });

    const a = randomF32([8, 64], 3);
    const b = randomF32([64, 16], 4);
    const ref = naiveMatmul(a, b);
    const { y } = await s0.run({ a, b });
    assert.deepEqual(y.shape, [8, 16]);
    assert.ok(maxAbsDiff(y.data as Float32Array, ref) <= BOUND);
    assert.equal(a.data.length, 8 * 64, "inputs are copied by default, not detached");

    // several runs in flight on both workers at once
    const jobs = Array.from({ length: 6 }, (_, i) => {
      const ai = randomF32([3 + i, 64], 10 + i);
      const s = i % 2 === 0 ? s0 : s1;
      return s.run({ a: ai, b }).then(({ y }) => ({ y, ref: naiveMatmul(ai, b) }));
    });
    for (const { y, ref } of await Promise.all(jobs)) {
      assert.ok(maxAbsDiff(y.data as Float32Array, ref) <= BOUND);
    }

    // transferInputs hands the buffers over
    const at = randomF32([2, 64], 5);
    const refT = naiveMatmul(at, b);
    const { y: yt } = await s1.run({ a: at, b }, ["y"], { transferInputs: true });
    assert.equal(at.data.length, 0, "transferred input is detached");
    assert.ok(maxAbsDiff(yt.data as Float32Array, refT) <= BOUND);
    // ... or only the named ones
    const an = randomF32([2, 64], 6), bn = randomF32([64, 16], 7);
    const refN = naiveMatmul(an, bn);
    const { y: yn } = await s1.run({ a: an, b: bn }, ["y"], { transferInputs: ["a"] });
    assert.equal(an.data.length, 0, "the named input is detached");
    assert.equal(bn.data.length, 64 * 16, "the other one is copied");
    assert.ok(maxAbsDiff(yn.data as Float32Array, refN) <= BOUND);
    await s0.release();
    await s1.release();
    await assert.rejects(s0.run({ a, b }), { message: "session 'mm0' on cpu:0 was released" });
  } finally {
    cpu0.close();
    cpu1.close();
  }
});

Deno.test("a worker validates feeds before sending and names the input", async () => {
  const w = await DeviceWorker.open("cpu:0");
  try {
    const s = await w.load(matmulModel(3, 2).bytes, { name: "mm" });
    const b = randomF32([3, 2], 1);
    await assert.rejects(s.run({ a: randomF32([2, 4], 2), b }), {
      message:
        "session 'mm' on cpu:0: input 'a' expects f32[n, 3], got f32[2, 4]: dim 1 is 4, expected 3",
    });
    await assert.rejects(s.run({ b }), {
      message: "session 'mm' on cpu:0: missing input 'a' (f32[n, 3])",
    });
  } finally {
    w.close();
  }
});

Deno.test("errors inside the worker come back with the original message and session name", async () => {
  const w = await DeviceWorker.open("cpu:1");
  try {
    await assert.rejects(
      w.load(new Uint8Array([8, 1, 0xff]), { name: "broken" }),
      /^Error: session 'broken' on cpu:1: could not create the session: .*\S/,
    );
    const s = await w.load(reshapeModel(), { name: "reshape" });
    const x = randomF32([6], 1);
    const shape = new Tensor("i64", [2], new BigInt64Array([4n, 4n]));
    await assert.rejects(
      s.run({ x, shape }),
      /^Error: session 'reshape' on cpu:1: run failed: .*cannot be reshaped to the requested shape/,
    );
    // the worker survives a failed run
    const { y } = await s.run({ x, shape: new Tensor("i64", [2], new BigInt64Array([3n, 2n])) });
    assert.deepEqual(y.shape, [3, 2]);
    assert.deepEqual([...(y.data as Float32Array)], [...x.data]);
  } finally {
    w.close();
  }
});

Deno.test("f16 feeds and outputs round-trip through a worker", async () => {
  const w = await DeviceWorker.open("cpu:0");
  try {
    const bits = new Uint16Array([0x3c00, 0xc100, 0x7bff, 0x0001]); // 1, -2.5, 65504, 2^-24
    const cast = await w.load(
      unaryModel("Cast", { dtype: "f16", shape: [4] }, "f32", { to: { int: 1 } }),
    );
    const { y } = await cast.run({ x: new Tensor("f16", [4], bits) });
    assert.deepEqual([...(y.data as Float32Array)], [1, -2.5, 65504, 2 ** -24]);
    const id = await w.load(unaryModel("Identity", { dtype: "f16", shape: [4] }, "f16"));
    const { y: same } = await id.run({ x: new Tensor("f16", [4], bits) });
    assert.equal(same.dtype, "f16");
    assert.ok(same.data instanceof Uint16Array);
    assert.deepEqual([...same.data], [...bits]);
  } finally {
    w.close();
  }
});

Deno.test("close() terminates the worker and rejects pending and later requests", async () => {
  const w = await DeviceWorker.open("cpu:0");
  const s = await w.load(matmulModel(3, 2).bytes, { name: "mm" });
  const pending = s.run({ a: randomF32([2, 3], 1), b: randomF32([3, 2], 2) });
  w.close();
  assert.equal(w.open, false);
  await assert.rejects(pending, { message: "cpu:0: device worker closed" });
  await assert.rejects(w.load(matmulModel(3, 2).bytes), {
    message: "cpu:0: device worker is closed",
  });
  await s.release(); // no-op after close
  w.close(); // twice is a no-op
});

Deno.test("DeviceWorker.open rejects unknown devices before starting a worker", async () => {
  await assert.rejects(DeviceWorker.open("gpu:0"), {
    message: "unknown device 'gpu:0': expected cpu, cpu:N, cuda:N or webgpu",
  });
});

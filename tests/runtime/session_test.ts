import assert from "node:assert/strict";
import { Tensor } from "../../src/tensor/tensor.ts";
import { parseDevice } from "../../src/runtime/device.ts";
import { checkFeeds, LocalSession, type ValueSpec } from "../../src/runtime/session.ts";
import { inputsSpecOf } from "../../src/graph/runner.ts";
import {
  matmulModel,
  maxAbsDiff,
  naiveMatmul,
  randomF32,
  reshapeModel,
  unaryModel,
} from "./_models.ts";

const f32 = (shape: number[]) =>
  new Tensor("f32", shape, new Float32Array(shape.reduce((p, d) => p * d, 1)));

Deno.test("LocalSession runs MatMul like a naive f64 product (|err| <= 1e-5)", async () => {
  const { graph, bytes } = matmulModel(7, 5);
  const s = await LocalSession.create(bytes, { name: "mm", inputsSpec: inputsSpecOf(graph) });
  try {
    assert.deepEqual(s.inputNames, ["a", "b"]);
    assert.deepEqual(s.outputNames, ["y"]);
    assert.deepEqual(s.inputs, [
      { name: "a", dtype: "f32", shape: ["n", 7] },
      { name: "b", dtype: "f32", shape: [7, 5] },
    ]);
    assert.deepEqual(s.outputs, [{ name: "y", dtype: "f32", shape: ["n", 5] }]);
    const a = randomF32([4, 7], 1);
    const b = randomF32([7, 5], 2);
    const { y } = await s.run({ a, b });
    assert.equal(y.dtype, "f32");
    assert.deepEqual(y.shape, [4, 5]);
    assert.ok(maxAbsDiff(y.data as Float32Array, naiveMatmul(a, b)) <= 1e-5);
  } finally {
    await s.release();
  }
});

Deno.test("LocalSession feeds f16 inputs and returns f16 outputs as raw bit patterns", async () => {
  // 1, 2, -2.5, 65504 (largest f16), 2^-24 (smallest subnormal), -0
  const bits = new Uint16Array([0x3c00, 0x4000, 0xc100, 0x7bff, 0x0001, 0x8000]);
  const values = [1, 2, -2.5, 65504, 2 ** -24, -0];
  const x = new Tensor("f16", [2, 3], bits);
  const cast = await LocalSession.create(
    unaryModel("Cast", { dtype: "f16", shape: [2, 3] }, "f32", { to: { int: 1 } }),
    { name: "cast" },
  );
  const id = await LocalSession.create(
    unaryModel("Identity", { dtype: "f16", shape: [2, 3] }, "f16"),
    {
      name: "identity",
    },
  );
  try {
    const { y } = await cast.run({ x });
    assert.equal(y.dtype, "f32");
    assert.deepEqual([...(y.data as Float32Array)], values);
    const { y: same } = await id.run({ x });
    assert.equal(same.dtype, "f16");
    assert.deepEqual(same.shape, [2, 3]);
    assert.ok(same.data instanceof Uint16Array);
    assert.deepEqual([...same.data], [...bits]);
  } finally {
    await cast.release();
    await id.release();
  }
});

Deno.test("checkFeeds names the session and input and shows expected vs got", () => {
  const specs: ValueSpec[] = [
    { name: "a", dtype: "f32", shape: ["batch", 3] },
    { name: "b", dtype: "f32", shape: ["batch", 2] },
  ];
  const L = "session 'mm' on cpu:0";
  const ok = { a: f32([4, 3]), b: f32([4, 2]) };
  checkFeeds(L, specs, ok);
  assert.throws(() => checkFeeds(L, specs, { a: f32([4, 3]) }), {
    message: "session 'mm' on cpu:0: missing input 'b' (f32[batch, 2])",
  });
  assert.throws(() => checkFeeds(L, specs, { ...ok, c: f32([1]) }), {
    message: "session 'mm' on cpu:0: unknown input 'c'; the inputs are a, b",
  });
  assert.throws(
    () => checkFeeds(L, specs, { ...ok, a: new Tensor("f64", [4, 3], new Float64Array(12)) }),
    {
      message:
        "session 'mm' on cpu:0: input 'a' expects f32[batch, 3], got f64[4, 3]: dtype f64 is not f32",
    },
  );
  assert.throws(() => checkFeeds(L, specs, { ...ok, a: f32([4, 3, 1]) }), {
    message:
      "session 'mm' on cpu:0: input 'a' expects f32[batch, 3], got f32[4, 3, 1]: rank 3 is not 2",
  });
  assert.throws(() => checkFeeds(L, specs, { ...ok, a: f32([4, 5]) }), {
    message:
      "session 'mm' on cpu:0: input 'a' expects f32[batch, 3], got f32[4, 5]: dim 1 is 5, expected 3",
  });
  assert.throws(() => checkFeeds(L, specs, { a: f32([4, 3]), b: f32([6, 2]) }), {
    message: "session 'mm' on cpu:0: input 'b' expects f32[batch, 2], got f32[6, 2]: " +
      "dim 0 'batch' is 6 but input 'a' has 'batch' = 4",
  });
  // unnamed dynamic dims ("") are free
  checkFeeds(L, [{ name: "a", dtype: "f32", shape: ["", ""] }, {
    name: "b",
    dtype: "f32",
    shape: [""],
  }], {
    a: f32([2, 3]),
    b: f32([5]),
  });
});

Deno.test("LocalSession validates feeds and output names before running", async () => {
  const s = await LocalSession.create(matmulModel(3, 2).bytes, { name: "mm", device: "cpu:0" });
  try {
    await assert.rejects(s.run({ a: f32([2, 4]), b: f32([3, 2]) }), {
      message:
        "session 'mm' on cpu:0: input 'a' expects f32[n, 3], got f32[2, 4]: dim 1 is 4, expected 3",
    });
    await assert.rejects(s.run({ a: f32([2, 3]), b: f32([3, 2]) }, ["z"]), {
      message: "session 'mm' on cpu:0: unknown output 'z'; the outputs are y",
    });
  } finally {
    await s.release();
  }
  await assert.rejects(s.run({ a: f32([2, 3]), b: f32([3, 2]) }), {
    message: "session 'mm' on cpu:0 was released",
  });
  await s.release(); // twice is a no-op
});

Deno.test("inputsSpec: graph dim names are used, and a contradicting spec is refused", async () => {
  const { bytes } = matmulModel(3, 2);
  const spec: ValueSpec[] = [
    { name: "a", dtype: "f32", shape: ["rows", 3] },
    { name: "b", dtype: "f32", shape: [3, 2] },
    { name: "unused", dtype: "i64", shape: [1] }, // dropped by lowering: ignored
  ];
  const s = await LocalSession.create(bytes, { name: "mm", inputsSpec: spec });
  assert.deepEqual(s.inputs.map((i) => i.shape), [["rows", 3], [3, 2]]);
  await s.release();
  await assert.rejects(
    LocalSession.create(bytes, {
      name: "mm",
      inputsSpec: [{ name: "b", dtype: "f32", shape: [4, 2] }],
    }),
    {
      message:
        "session 'mm' on cpu: inputsSpec declares input 'b' as f32[4, 2] but the model has f32[3, 2]",
    },
  );
});

Deno.test("LocalSession reports load and run failures from ONNX Runtime with the session name", async () => {
  await assert.rejects(
    LocalSession.create(new Uint8Array([1, 2, 3]), { name: "junk" }),
    /^Error: session 'junk' on cpu: could not create the session: /,
  );
  await assert.rejects(
    LocalSession.create("/nonexistent/model.onnx"),
    /session 'model.onnx' on cpu: could not create the session: .*nonexistent/,
  );
  const s = await LocalSession.create(reshapeModel(), {
    name: "reshape",
    device: parseDevice("cpu:0"),
  });
  try {
    const x = f32([6]);
    const shape = new Tensor("i64", [2], new BigInt64Array([4n, 4n]));
    await assert.rejects(
      s.run({ x, shape }),
      /^Error: session 'reshape' on cpu:0: run failed: .*\S/,
    );
    const { y } = await s.run({ x, shape: new Tensor("i64", [2], new BigInt64Array([2n, 3n])) });
    assert.deepEqual(y.shape, [2, 3]);
  } finally {
    await s.release();
  }
});

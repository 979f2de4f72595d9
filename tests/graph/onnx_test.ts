import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as ort from "onnxruntime-node";
import { Graph } from "../../src/graph/ir.ts";
import { toModelProto } from "../../src/graph/onnx.ts";
import { relativeTo } from "../../src/graph/compile.ts";
import { ProtoWriter } from "../../src/graph/protobuf.ts";
import { Tensor } from "../../src/tensor/tensor.ts";

type Feeds = Record<string, ort.Tensor>;

/** Creates a session from bytes or a path, runs it once and releases it. */
async function run(model: Uint8Array | string, feeds: Feeds): Promise<Record<string, ort.Tensor>> {
  const session = typeof model === "string"
    ? await ort.InferenceSession.create(model)
    : await ort.InferenceSession.create(model);
  const out = await session.run(feeds);
  await session.release();
  return out;
}

const f32 = (data: number[], dims: number[]) =>
  new ort.Tensor("float32", Float32Array.from(data), dims);
const values = (t: ort.Tensor) => Array.from(t.data as ArrayLike<number>);

/** Naive reference varint encoder over BigInt (two's complement for negatives). */
function refVarint(x: bigint): number[] {
  let u = BigInt.asUintN(64, x);
  const out: number[] = [];
  do {
    let b = Number(u & 0x7fn);
    u >>= 7n;
    if (u !== 0n) b |= 0x80;
    out.push(b);
  } while (u !== 0n);
  return out;
}

Deno.test("ProtoWriter: varints match a BigInt reference for small, large and negative values", () => {
  const samples: (number | bigint)[] = [
    0,
    1,
    127,
    128,
    300,
    2 ** 31 - 1,
    2 ** 31,
    2 ** 32 - 1,
    2 ** 32,
    2 ** 35 + 5,
    2 ** 42 + 1,
    Number.MAX_SAFE_INTEGER,
    -1,
    -2,
    -128,
    -(2 ** 31),
    -(2 ** 32),
    -(2 ** 32) - 1,
    Number.MIN_SAFE_INTEGER,
    2n ** 63n - 1n,
    -(2n ** 63n),
    2n ** 64n - 1n,
  ];
  let seed = 12345;
  for (let i = 0; i < 200; i++) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const mag = Math.floor((seed / 2 ** 31) * 2 ** (i % 53));
    samples.push(i % 2 === 0 ? mag : -mag);
  }
  for (const x of samples) {
    const w = new ProtoWriter(16);
    w.varint(x);
    assert.deepEqual(Array.from(w.finish()), refVarint(BigInt(x)), `varint(${x})`);
  }
  assert.throws(() => new ProtoWriter().varint(2 ** 53), /safe integer/);
  assert.throws(() => new ProtoWriter().varint(2n ** 64n), /64 bits/);
});

Deno.test("ProtoWriter: fields, nested messages longer than 127 bytes and packed values", () => {
  const w = new ProtoWriter(16); // forces growth
  w.int64(1, 150);
  w.message(2, (m) => m.string(1, "hi"));
  assert.deepEqual(Array.from(w.finish()), [0x08, 0x96, 0x01, 0x12, 0x04, 0x0a, 0x02, 0x68, 0x69]);

  const long = "x".repeat(200);
  const n = new ProtoWriter(16);
  n.message(3, (m) => m.string(1, long));
  const bytes = n.finish();
  // key, varint(203) = ca 01, then key 0a, varint(200) = c8 01, then the text
  assert.deepEqual(Array.from(bytes.subarray(0, 6)), [0x1a, 0xcb, 0x01, 0x0a, 0xc8, 0x01]);
  assert.equal(bytes.length, 6 + 200);
  assert.equal(new TextDecoder().decode(bytes.subarray(6)), long);

  const p = new ProtoWriter();
  p.packedVarints(4, [1, 300]);
  p.packedFloats(5, [1.5]);
  p.fixed32(6, 7);
  p.double(7, -2);
  p.string(8, "é");
  p.fixed64(9, -2);
  const expected = [
    [0x22, 0x03, 0x01, 0xac, 0x02], // packed varints 1, 300
    [0x2a, 0x04, 0x00, 0x00, 0xc0, 0x3f], // packed float 1.5
    [0x35, 0x07, 0x00, 0x00, 0x00], // fixed32 7
    [0x39, 0, 0, 0, 0, 0, 0, 0, 0xc0], // double -2
    [0x42, 0x02, 0xc3, 0xa9], // "é" in UTF-8
    [0x49, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], // fixed64 -2
  ];
  assert.deepEqual(Array.from(p.finish()), expected.flat());
});

Deno.test("toModelProto: Add and MatMul give hand-computed results", async () => {
  const g = new Graph();
  const a = g.input("a", "f32", [2, 3]);
  const b = g.input("b", "f32", [2, 3]);
  const m = g.input("m", "f32", [3, 2]);
  const [sum] = g.node("Add", [a, b], {}, [{ dtype: "f32", shape: [2, 3] }]);
  const [prod] = g.node("MatMul", [sum, m], {}, [{ dtype: "f32", shape: [2, 2] }]);
  const out = await run(toModelProto(g, { sum, prod }), {
    a: f32([1, 2, 3, 4, 5, 6], [2, 3]),
    b: f32([1, 1, 1, 1, 1, 1], [2, 3]),
    m: f32([1, 0, 0, 1, 1, 1], [3, 2]),
  });
  assert.deepEqual(values(out.sum), [2, 3, 4, 5, 6, 7]);
  // rows [2,3,4] and [5,6,7] times [[1,0],[0,1],[1,1]]
  assert.deepEqual(values(out.prod), [6, 7, 12, 13]);
  assert.deepEqual(out.prod.dims, [2, 2]);
});

Deno.test("toModelProto: int, ints, float and string attributes", async () => {
  const g = new Graph();
  const x = g.input("x", "f32", [2, 3]);
  const [soft] = g.node("Softmax", [x], { axis: { int: -1 } }, [{ dtype: "f32", shape: [2, 3] }]);
  const [tr] = g.node("Transpose", [x], { perm: { ints: [1, 0] } }, [{
    dtype: "f32",
    shape: [3, 2],
  }]);
  const w = g.input("w", "f32", [2, 3]);
  const [gemm] = g.node("Gemm", [x, w], { transB: { int: 1 }, alpha: { float: 0.5 } }, [{
    dtype: "f32",
    shape: [2, 2],
  }]);
  const v = g.input("v", "f32", [4]);
  const pads = g.constant(new Tensor("i64", [2], new BigInt64Array([2n, 1n])));
  const [padded] = g.node("Pad", [v, pads], { mode: { string: "reflect" } }, [{
    dtype: "f32",
    shape: [7],
  }]);
  const xs = [1, 2, 3, 0, 0, Math.log(2)];
  const out = await run(toModelProto(g, { soft, tr, gemm, padded }), {
    x: f32(xs, [2, 3]),
    w: f32([1, 1, 1, 2, 0, -2], [2, 3]),
    v: f32([1, 2, 3, 4], [4]),
  });
  const ref = (row: number[]) => {
    const e = row.map(Math.exp);
    const s = e.reduce((p, q) => p + q);
    return e.map((t) => t / s);
  };
  const expected = [...ref(xs.slice(0, 3)), ...ref(xs.slice(3))];
  values(out.soft).forEach((got, i) =>
    assert.ok(Math.abs(got - expected[i]) < 1e-6, `softmax ${i}`)
  );
  assert.deepEqual(values(out.tr), [1, 0, 2, 0, 3, Math.fround(Math.log(2))]);
  // 0.5 * x·wᵀ: row 1 = [6, -4] / 2, row 2 = [ln2, -2 ln2] / 2
  const gemmRef = [3, -2, Math.log(2) / 2, -Math.log(2)];
  values(out.gemm).forEach((got, i) => assert.ok(Math.abs(got - gemmRef[i]) < 1e-6, `gemm ${i}`));
  assert.deepEqual(values(out.padded), [3, 2, 1, 2, 3, 4, 3]);
});

Deno.test("toModelProto: tensor attribute (ConstantOfShape value)", async () => {
  const g = new Graph();
  const shape = g.input("shape", "i64", [2]);
  const [filled] = g.node(
    "ConstantOfShape",
    [shape],
    { value: { tensor: new Tensor("f32", [1], new Float32Array([2.5])) } },
    [{ dtype: "f32", shape: ["r", "c"] }],
  );
  const out = await run(toModelProto(g, { filled }), {
    shape: new ort.Tensor("int64", new BigInt64Array([2n, 3n]), [2]),
  });
  assert.deepEqual(out.filled.dims, [2, 3]);
  assert.deepEqual(values(out.filled), [2.5, 2.5, 2.5, 2.5, 2.5, 2.5]);
});

Deno.test("toModelProto: a dynamic dim is fed with two different sizes", async () => {
  const g = new Graph();
  const x = g.input("x", "f32", ["batch", 2]);
  const m = g.constant(new Tensor("f32", [2, 1], new Float32Array([1, 10])), "weights");
  const [y] = g.node("MatMul", [x, m], {}, [{ dtype: "f32", shape: ["batch", 1] }]);
  const session = await ort.InferenceSession.create(toModelProto(g, { y }));
  const one = await session.run({ x: f32([1, 2], [1, 2]) });
  assert.deepEqual(one.y.dims, [1, 1]);
  assert.deepEqual(values(one.y), [21]);
  const three = await session.run({ x: f32([1, 2, 3, 4, 5, 6], [3, 2]) });
  assert.deepEqual(three.y.dims, [3, 1]);
  assert.deepEqual(values(three.y), [21, 43, 65]);
  await session.release();
});

Deno.test("toModelProto: f64 and i64 inputs, i64 constant with negative values", async () => {
  const g = new Graph();
  const d = g.input("d", "f64", [3]);
  const i = g.input("i", "i64", [2, 2]);
  const [dd] = g.node("Mul", [d, d], {}, [{ dtype: "f64", shape: [3] }]);
  const shape = g.constant(new Tensor("i64", [1], new BigInt64Array([-1n])));
  const [flat] = g.node("Reshape", [i, shape], {}, [{ dtype: "i64", shape: [4] }]);
  const big = g.constant(new Tensor("i64", [], new BigInt64Array([-(2n ** 40n)])));
  const [shifted] = g.node("Add", [flat, big], {}, [{ dtype: "i64", shape: [4] }]);
  const out = await run(toModelProto(g, { dd, shifted }), {
    d: new ort.Tensor("float64", new Float64Array([0.1, -2, 1e10]), [3]),
    i: new ort.Tensor("int64", new BigInt64Array([1n, -2n, 3n, 2n ** 50n]), [2, 2]),
  });
  assert.equal(out.dd.type, "float64");
  assert.deepEqual(Array.from(out.dd.data as Float64Array), [0.1 * 0.1, 4, 1e20]);
  assert.deepEqual(out.shifted.dims, [4]);
  const off = -(2n ** 40n);
  assert.deepEqual(Array.from(out.shifted.data as BigInt64Array), [
    1n + off,
    -2n + off,
    3n + off,
    2n ** 50n + off,
  ]);
});

Deno.test("toModelProto: constant initializers of several dtypes", async () => {
  const g = new Graph();
  const x = g.input("x", "f32", [3]);
  const c = g.constant(new Tensor("f32", [3], new Float32Array([0.5, -1, 2])), "c");
  const c2 = g.constant(new Tensor("f32", [3], new Float32Array([1, 1, 1])), "c"); // name clash
  const mask = g.constant(new Tensor("bool", [3], new Uint8Array([1, 0, 1])));
  const [y] = g.node("Mul", [x, c], {}, [{ dtype: "f32", shape: [3] }]);
  const [z] = g.node("Add", [y, c2], {}, [{ dtype: "f32", shape: [3] }]);
  const [w] = g.node("Where", [mask, z, x], {}, [{ dtype: "f32", shape: [3] }]);
  const out = await run(toModelProto(g, { w }), { x: f32([2, 3, 4], [3]) });
  assert.deepEqual(values(out.w), [2, 3, 9]);
});

Deno.test("toModelProto: Identity nodes for inputs, constants and repeated outputs", async () => {
  const g = new Graph();
  const a = g.input("a", "f32", [2]);
  const k = g.constant(new Tensor("f32", [2], new Float32Array([7, 8])));
  const [n] = g.node("Neg", [a], {}, [{ dtype: "f32", shape: [2] }]);
  const session = await ort.InferenceSession.create(
    toModelProto(g, [["copy", a], ["k", k], ["neg", n], ["neg2", n]]),
  );
  assert.deepEqual(session.inputNames, ["a"]);
  assert.deepEqual(session.outputNames, ["copy", "k", "neg", "neg2"]);
  const out = await session.run({ a: f32([1, -2], [2]) });
  assert.deepEqual(values(out.copy), [1, -2]);
  assert.deepEqual(values(out.k), [7, 8]);
  assert.deepEqual(values(out.neg), [-1, 2]);
  assert.deepEqual(values(out.neg2), [-1, 2]);
  await session.release();
});

Deno.test("toModelProto: unrequested nodes and inputs are pruned", async () => {
  const g = new Graph();
  const a = g.input("a", "f32", [2]);
  const unused = g.input("unused", "i64", [2]);
  // Invalid if emitted: Add of f32 and i64 fails ONNX type checking.
  const [bad] = g.node("Add", [a, unused], {}, [{ dtype: "f32", shape: [2] }]);
  const [ok] = g.node("Relu", [a], {}, [{ dtype: "f32", shape: [2] }]);
  const bytes = toModelProto(g, { ok });
  const session = await ort.InferenceSession.create(bytes);
  assert.deepEqual(session.inputNames, ["a"]);
  const out = await session.run({ a: f32([-1, 3], [2]) });
  assert.deepEqual(values(out.ok), [0, 3]);
  await session.release();
  // The same graph with the invalid node requested is rejected, so pruning is what saved it.
  await assert.rejects(ort.InferenceSession.create(toModelProto(g, { ok, bad })));
  assert.ok(!new TextDecoder().decode(bytes).includes("unused"));
});

Deno.test("toModelProto: the same graph gives the same bytes", () => {
  const build = () => {
    const g = new Graph();
    const a = g.input("a", "f32", ["batch", 4]);
    const c = g.constant(new Tensor("f32", [4], new Float32Array([1, 2, 3, 4])));
    const [s] = g.node("Add", [a, c], {}, [{ dtype: "f32", shape: ["batch", 4] }]);
    const [t] = g.node("Softmax", [s], { axis: { int: 1 } }, [{
      dtype: "f32",
      shape: ["batch", 4],
    }]);
    return { g, t, s };
  };
  const one = build();
  const first = toModelProto(one.g, { t: one.t, s: one.s });
  assert.deepEqual(toModelProto(one.g, { t: one.t, s: one.s }), first);
  const two = build();
  assert.deepEqual(toModelProto(two.g, { t: two.t, s: two.s }), first);
  assert.notDeepEqual(toModelProto(two.g, { t: two.t }), first);
  assert.notDeepEqual(toModelProto(one.g, { t: one.t, s: one.s }, { opset: 20 }), first);
});

Deno.test("toModelProto: external data at the locations relativeTo(dir) gives", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "liveedit-onnx-"));
  try {
    const weights = new Float32Array([1, 2, 3, 4, 5, 6]);
    const header = new Uint8Array(24).fill(0xab);
    fs.mkdirSync(path.join(dir, "sub"));
    const file = path.join(dir, "sub", "w.bin");
    fs.writeFileSync(file, new Uint8Array([...header, ...new Uint8Array(weights.buffer)]));
    const g = new Graph();
    const x = g.input("x", "f32", [1, 2]);
    const w = g.external("w", "f32", [2, 3], { path: file, offset: 24, length: 24 });
    const [y] = g.node("MatMul", [x, w], {}, [{ dtype: "f32", shape: [1, 3] }]);
    const bytes = toModelProto(g, { y }, { externalLocation: relativeTo(dir) });
    assert.ok(bytes.length < 400, `model is ${bytes.length} bytes`);
    assert.ok(new TextDecoder().decode(bytes).includes("sub/w.bin"));
    const modelPath = path.join(dir, "model.onnx");
    fs.writeFileSync(modelPath, bytes);
    const out = await run(modelPath, { x: f32([1, 10], [1, 2]) });
    assert.deepEqual(values(out.y), [41, 52, 63]);

    assert.throws(() => toModelProto(g, { y }), /needs options.externalLocation/);
    assert.throws(
      () =>
        toModelProto(g, { y }, { externalLocation: relativeTo(path.join(dir, "sub", "deeper")) }),
      /not inside/,
    );
    assert.throws(
      () => toModelProto(g, { y }, { externalLocation: () => "../w.bin" }),
      /relative path/,
    );
    const bad = g.external("bad", "f32", [2, 3], { path: file, offset: 24, length: 20 });
    assert.throws(
      () => toModelProto(g, { bad }, { externalLocation: relativeTo(dir) }),
      /needs 24/,
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("toModelProto: rejects bad outputs with clear errors", () => {
  const g = new Graph();
  const a = g.input("a", "f32", [2]);
  const [n] = g.node("Neg", [a], {}, [{ dtype: "f32", shape: [2] }]);
  assert.throws(() => toModelProto(g, {}), /no outputs/);
  assert.throws(() => toModelProto(g, { a: n }), /name of a graph input/);
  assert.throws(() => toModelProto(g, { a }), /request it under another name/);
  assert.throws(() => toModelProto(g, [["x", n], ["x", a]]), /repeated/);
  const other = new Graph().input("o", "f32", [1]);
  assert.throws(() => toModelProto(g, { other }), /another graph/);
  const [frac] = g.node("Softmax", [a], { axis: { int: 0.5 } }, [{ dtype: "f32", shape: [2] }]);
  assert.throws(() => toModelProto(g, { frac }), /axis.*not an integer/);
});

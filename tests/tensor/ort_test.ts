import assert from "node:assert/strict";
import * as ort from "onnxruntime-node";
import { fromArray } from "../../src/tensor/create.ts";
import { cast } from "../../src/tensor/ops.ts";
import type { DType } from "../../src/tensor/dtype.ts";
import { dtypeOfOrt, fromOrt, ortType, toOrt } from "../../src/tensor/ort.ts";
import { Tensor } from "../../src/tensor/tensor.ts";

// A hand-written protobuf encoder for a one-node ONNX model (there is no graph builder here).
// Field numbers are those of onnx.proto: ModelProto{ir_version=1, graph=7, opset_import=8},
// GraphProto{node=1, name=2, input=11, output=12}, NodeProto{input=1, output=2, name=3,
// op_type=4, attribute=5}, ValueInfoProto{name=1, type=2}, TypeProto{tensor_type=1},
// TypeProto.Tensor{elem_type=1, shape=2}, TensorShapeProto{dim=1}, Dimension{dim_value=1},
// AttributeProto{name=1, i=3, type=20 (INT=2)}.
type Bytes = number[];
const varint = (n: number): Bytes => {
  const out: Bytes = [];
  for (; n >= 0x80; n = Math.floor(n / 128)) out.push((n % 128) | 0x80);
  return [...out, n];
};
const int = (field: number, n: number): Bytes => [...varint(field * 8), ...varint(n)];
const bytes = (
  field: number,
  b: Bytes,
): Bytes => [...varint(field * 8 + 2), ...varint(b.length), ...b];
const str = (field: number, s: string): Bytes => bytes(field, [...new TextEncoder().encode(s)]);
const valueInfo = (name: string, elem: number, dims: number[]): Bytes => [
  ...str(1, name),
  ...bytes(2, bytes(1, [...int(1, elem), ...bytes(2, dims.flatMap((d) => bytes(1, int(1, d))))])),
];
/** ONNX elem_type codes. */
const ELEM: Record<DType, number> = {
  f32: 1,
  u8: 2,
  i32: 6,
  i64: 7,
  bool: 9,
  f16: 10,
  f64: 11,
  bf16: 16,
};
function oneNodeModel(op: string, inElem: number, outElem: number, dims: number[], to?: number) {
  const attr = to === undefined ? [] : bytes(5, [...str(1, "to"), ...int(20, 2), ...int(3, to)]);
  const node = [...str(1, "x"), ...str(2, "y"), ...str(3, "n0"), ...str(4, op), ...attr];
  const graph = [
    ...bytes(1, node),
    ...str(2, "g"),
    ...bytes(11, valueInfo("x", inElem, dims)),
    ...bytes(12, valueInfo("y", outElem, dims)),
  ];
  return new Uint8Array([...int(1, 8), ...bytes(8, int(2, 17)), ...bytes(7, graph)]);
}
const session = (bytes: Uint8Array) => ort.InferenceSession.create(bytes);

const F16_ONE_TWO_MINUS_THREE = [0x3c00, 0x4000, 0xc200];

Deno.test("dtype mapping both ways; bf16 rejected with a clear message", () => {
  const pairs: [DType, string][] = [
    ["f32", "float32"],
    ["f64", "float64"],
    ["f16", "float16"],
    ["i64", "int64"],
    ["i32", "int32"],
    ["u8", "uint8"],
    ["bool", "bool"],
  ];
  for (const [d, o] of pairs) {
    assert.equal(ortType(d), o);
    assert.equal(dtypeOfOrt(o), d);
  }
  assert.throws(() => ortType("bf16"), /no bfloat16 tensors; cast to f32/);
  assert.throws(
    () => toOrt(new Tensor("bf16", [1], new Uint16Array(1)), "weights.w"),
    /weights\.w: .*bfloat16/,
  );
  assert.throws(() => dtypeOfOrt("string"), /'string' has no host dtype/);
});

Deno.test("Identity round trips through a real session for every supported dtype", async () => {
  const cases: Tensor[] = [
    fromArray([[1.5, -2], [3, 4]]),
    fromArray([[0.1, 1e300], [-0, 5]], "f64"),
    fromArray([[1, 2], [3, -4]], "i32"),
    fromArray([[0, 255], [7, 8]], "u8"),
    fromArray([[true, false], [false, true]], "bool"),
    new Tensor("i64", [2, 2], new BigInt64Array([2n ** 62n, -1n, 0n, 5n])),
    new Tensor("f16", [2, 2], new Uint16Array([0x3c00, 0x7c00, 0x0001, 0xfbff])),
  ];
  for (const t of cases) {
    const s = await session(oneNodeModel("Identity", ELEM[t.dtype], ELEM[t.dtype], [2, 2]));
    const out = fromOrt((await s.run({ x: toOrt(t) })).y as ort.Tensor, "y");
    assert.equal(out.dtype, t.dtype);
    assert.deepEqual(out.shape, [2, 2]);
    assert.deepEqual(
      Array.from(out.data as ArrayLike<number>),
      Array.from(t.data as ArrayLike<number>),
      t.dtype,
    );
    await s.release();
  }
});

Deno.test("float16 quirk: a stock ort float16 tensor is rejected by the binding; toOrt's is not", async () => {
  const s = await session(oneNodeModel("Identity", ELEM.f16, ELEM.f16, [3]));
  const stock = new ort.Tensor("float16", new Uint16Array(F16_ONE_TWO_MINUS_THREE), [3]);
  // onnxruntime-common wraps the bits in globalThis.Float16Array, which the binding cannot read.
  assert.equal(stock.data.constructor.name, "Float16Array");
  await assert.rejects(() => s.run({ x: stock }), /not enough space/);
  const ours = toOrt(new Tensor("f16", [3], new Uint16Array(F16_ONE_TWO_MINUS_THREE)));
  assert.equal(ours.type, "float16");
  assert.ok(ours.data instanceof Uint16Array);
  const y = (await s.run({ x: ours })).y as ort.Tensor;
  assert.deepEqual(Array.from(fromOrt(y).data as Uint16Array), F16_ONE_TWO_MINUS_THREE);
  await s.release();
});

Deno.test("Cast f32 -> f16 -> f32 in ORT agrees with the host bit conversions", async () => {
  const x = fromArray([1, 2, -3, 65520, 2 ** -25 * 3, 0.1]);
  const down = await session(oneNodeModel("Cast", ELEM.f32, ELEM.f16, [6], ELEM.f16));
  const h = fromOrt((await down.run({ x: toOrt(x) })).y as ort.Tensor);
  assert.equal(h.dtype, "f16");
  assert.deepEqual(
    Array.from(h.data as Uint16Array),
    Array.from(cast(x, "f16").data as Uint16Array),
  );
  assert.deepEqual(Array.from(h.data as Uint16Array), [
    0x3c00,
    0x4000,
    0xc200,
    0x7c00,
    0x0002,
    0x2e66,
  ]);
  const up = await session(oneNodeModel("Cast", ELEM.f16, ELEM.f32, [6], ELEM.f32));
  const back = fromOrt((await up.run({ x: toOrt(h) })).y as ort.Tensor);
  assert.deepEqual(Array.from(back.data as Float32Array), [
    1,
    2,
    -3,
    Infinity,
    2 ** -23 * 0.5 * 2,
    Math.fround(0.0999755859375),
  ]);
  await down.release();
  await up.release();
});

Deno.test("bfloat16 models are not usable from onnxruntime-node (why bf16 throws)", async () => {
  await assert.rejects(
    () => session(oneNodeModel("Identity", ELEM.bf16, ELEM.bf16, [3])),
    /Unsupported data type: 16/,
  );
  assert.throws(
    () => new ort.Tensor("bfloat16" as ort.Tensor.Type, new Uint16Array(3), [3]),
    /Unsupported tensor type/,
  );
});

Deno.test("fromOrt shares memory and checks the data array", () => {
  const o = new ort.Tensor("float32", new Float32Array([1, 2]), [2]);
  const t = fromOrt(o);
  (o.data as Float32Array)[0] = 9;
  assert.equal(t.data[0], 9);
  const bad = new ort.Tensor("uint8", new Uint8Array(2), [2]);
  Object.defineProperty(bad, "type", { value: "int32" });
  assert.throws(
    () => fromOrt(bad, "logits"),
    /logits: ort int32 tensor holds Uint8Array, not Int32Array/,
  );
});

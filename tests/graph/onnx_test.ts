import assert from "node:assert/strict";
import * as ort from "onnxruntime-node";
import { Graph } from "../../src/graph/ir.ts";
import { toModelProto } from "../../src/graph/onnx.ts";

Deno.test("toModelProto: Add runs in ONNX Runtime", async () => {
  const g = new Graph();
  const a = g.input("a", "f32", [2, 3]);
  const b = g.input("b", "f32", [2, 3]);
  const [sum] = g.node("Add", [a, b], {}, [{ dtype: "f32", shape: [2, 3] }]);
  const session = await ort.InferenceSession.create(toModelProto(g, { sum }));
  const out = await session.run({
    a: new ort.Tensor("float32", new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]),
    b: new ort.Tensor("float32", new Float32Array([10, 20, 30, 40, 50, 60]), [2, 3]),
  });
  assert.deepEqual(Array.from(out.sum.data as Float32Array), [11, 22, 33, 44, 55, 66]);
  await session.release();
});

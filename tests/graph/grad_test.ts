import assert from "node:assert/strict";
import { grad } from "../../src/graph/grad.ts";
import { Graph } from "../../src/graph/ir.ts";
import { toModelProto } from "../../src/graph/onnx.ts";
import * as op from "../../src/graph/ops.ts";
import { LocalSession } from "../../src/runtime/session.ts";
import { Tensor } from "../../src/tensor/tensor.ts";

Deno.test("grad: nothing flows through stopGradient, so its Identity node needs no rule", async () => {
  const g = new Graph();
  const x = g.input("x", "f32", [3]);
  const loss = op.reduceSum(op.mul(op.stopGradient(x), x));
  const [dx] = grad(loss, [x]);
  assert.ok(g.nodes.find((n) => n.op === "Identity")!.noGrad);
  // d/dx sum(stop(x) · x) = stop(x) = x, not 2x: the product rule's other term is cut.
  const s = await LocalSession.create(toModelProto(g, { dx }), { name: "stop-gradient" });
  try {
    const out = await s.run({ x: new Tensor("f32", [3], Float32Array.of(1, 2, 3)) });
    assert.deepEqual([...out.dx.data], [1, 2, 3]);
  } finally {
    await s.release();
  }
});

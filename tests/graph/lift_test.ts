import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { compileModel } from "../../src/graph/compile.ts";
import { grad } from "../../src/graph/grad.ts";
import { Graph, type Value } from "../../src/graph/ir.ts";
import { liftExternals } from "../../src/graph/lift.ts";
import { toModelProto } from "../../src/graph/onnx.ts";
import * as op from "../../src/graph/ops.ts";
import { LocalSession } from "../../src/runtime/session.ts";
import { toNumbers } from "../../src/tensor/elements.ts";
import { Tensor } from "../../src/tensor/tensor.ts";

const W1 = [0.5, -1, 2, 3, 0.25, -4];
const W2 = [1.5, 0.5, -2, 1, -0.75, 0.125];
const X = [[1, 2], [-0.5, 0.25]];

/** `loss = mean(tanh(x · W) · W[0, 0])` with W [2, 3] external from `file`, and dloss/dW. */
function traced(file: string): { g: Graph; outputs: Record<string, Value> } {
  const g = new Graph();
  const x = g.input("x", "f32", ["batch", 2]);
  const w = g.external("w", "f32", [2, 3], { path: file, offset: 0, length: 24 });
  const scale = op.reshape(op.slice(op.reshape(w, [6]), [0], [1], [0]), []);
  const loss = op.reduceMean(op.mul(op.tanh(op.matmul(x, w)), scale));
  const [dw] = grad(loss, [w]);
  return { g, outputs: { loss, dw } };
}

function writeWeights(dir: string, name: string, values: number[]): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, new Uint8Array(new Float32Array(values).buffer));
  return file;
}

async function run(model: string | Uint8Array, feeds: Record<string, Tensor>) {
  const session = await LocalSession.create(model);
  try {
    const out = await session.run(feeds);
    return { loss: toNumbers(out.loss)[0], dw: toNumbers(out.dw) };
  } finally {
    await session.release();
  }
}

Deno.test("liftExternals: fed weights give what the same weights read from a file give", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "liveedit-lift-"));
  try {
    const x = new Tensor("f32", [2, 2], new Float32Array(X.flat()));
    const f1 = writeWeights(dir, "w1.bin", W1), f2 = writeWeights(dir, "w2.bin", W2);
    const lifted = (() => {
      const { g, outputs } = traced(f1);
      return liftExternals(g, outputs);
    })();
    assert.deepEqual([...lifted.graph.inputs.keys()].sort(), ["w", "x"]);
    assert.equal(lifted.lifted.get("w")!.source.kind, "input");
    assert.ok(!lifted.graph.values.some((v) => v.source.kind === "external"));
    const liftedModel = toModelProto(lifted.graph, lifted.outputs);
    for (const [file, values] of [[f1, W1], [f2, W2]] as const) {
      const { g, outputs } = traced(file);
      const compiled = await compileModel(g, outputs, { cacheDir: path.join(dir, "cache") });
      const fromFile = await run(compiled.path, { x });
      const fed = await run(liftedModel, {
        x,
        w: new Tensor("f32", [2, 3], new Float32Array(values)),
      });
      assert.equal(fed.loss, fromFile.loss);
      assert.deepEqual(fed.dw, fromFile.dw);
    }
    // and the lifted gradient is the derivative: a central difference on one weight
    const at = async (
      values: number[],
    ) => (await run(liftedModel, { x, w: new Tensor("f32", [2, 3], new Float32Array(values)) }));
    const h = 1e-2, k = 4;
    const plus = W1.map((v, i) => i === k ? v + h : v),
      minus = W1.map((v, i) => i === k ? v - h : v);
    const numeric = ((await at(plus)).loss - (await at(minus)).loss) / (2 * h);
    const analytic = (await at(W1)).dw[k];
    assert.ok(Math.abs(numeric - analytic) < 1e-3, `dloss/dw[${k}] ${analytic} vs ${numeric}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("liftExternals: shared names share an input; clashes are errors naming the weight", () => {
  const g = new Graph();
  const data = { path: "w.bin", offset: 0, length: 8 };
  const a = g.external("w", "f32", [2], data), b = g.external("w", "f32", [2], data);
  const lifted = liftExternals(g, { y: op.add(a, b) });
  assert.equal(lifted.graph.inputs.size, 1);
  const node = lifted.graph.nodes[0];
  assert.equal(node.inputs[0], node.inputs[1]);

  const g2 = new Graph();
  g2.external("w", "f32", [2], data);
  const c = g2.external("w", "f32", [3], { ...data, length: 12 });
  assert.throws(() => liftExternals(g2, { c }), /externals named 'w' differ/);

  const g3 = new Graph();
  const x = g3.input("w", "f32", [2]);
  const d = g3.external("w", "f32", [2], data);
  assert.throws(
    () => liftExternals(g3, { y: op.add(x, d) }),
    /external 'w' has the name of a graph input/,
  );
});

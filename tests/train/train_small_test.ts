import assert from "node:assert/strict";
import { grad } from "../../src/graph/grad.ts";
import { Graph, type Value } from "../../src/graph/ir.ts";
import { toModelProto } from "../../src/graph/onnx.ts";
import * as op from "../../src/graph/ops.ts";
import { attend } from "../../src/models/attention.ts";
import { LocalSession } from "../../src/runtime/session.ts";
import { randn } from "../../src/tensor/create.ts";
import { toNumbers } from "../../src/tensor/elements.ts";
import { Rng } from "../../src/tensor/rng.ts";
import type { Tensor } from "../../src/tensor/tensor.ts";
import { Adam } from "../../src/train/adam.ts";

const D = 8;
const SHAPES: Record<string, number[]> = {
  wq: [D, D],
  wk: [D, D],
  wv: [D, D],
  fc1: [16, D],
  b1: [16],
  fc2: [1, 16],
};

/** Cross-attention of 4 queries over 6 context tokens, then a ReLU MLP, mean-pooled. */
function model(q: Value, kv: Value, p: Record<string, Value>): Value {
  const a = attend(op.linear(q, p.wq), op.linear(kv, p.wk), op.linear(kv, p.wv), { heads: 2 });
  const h = op.linear(op.relu(op.linear(op.add(a, q), p.fc1, p.b1)), p.fc2);
  return op.reduceMean(h, [1, 2]); // [batch]
}

function scaled(t: Tensor<"f32">, s: number): Tensor<"f32"> {
  t.data.forEach((v, i) => (t.data[i] = v * s));
  return t;
}

Deno.test("a small MLP + cross-attention model trained with Adam cuts its loss 10x", async () => {
  const rng = new Rng(3);
  const init = (seed: Rng) =>
    Object.fromEntries(
      Object.entries(SHAPES).map(([k, s]) => [k, scaled(randn(s, seed), 1 / Math.sqrt(s.at(-1)!))]),
    );
  const teacher = init(new Rng(99));
  const student = init(rng);
  const q = randn([64, 4, D], rng);
  const kv = randn([64, 6, D], rng);

  const g = new Graph();
  const qv = g.input("q", "f32", ["batch", 4, D]);
  const kvv = g.input("kv", "f32", ["batch", 6, D]);
  const params = Object.fromEntries(
    Object.entries(SHAPES).map(([k, s]) => [k, g.input(k, "f32", s)]),
  );
  const y = g.input("y", "f32", ["batch"]);
  const pred = model(qv, kvv, params);
  const diff = op.sub(pred, y);
  const loss = op.reduceMean(op.mul(diff, diff));
  const names = Object.keys(SHAPES);
  const grads = grad(loss, names.map((k) => params[k]));
  const outputs: Record<string, Value> = { loss, pred };
  names.forEach((k, i) => (outputs[`grad.${k}`] = grads[i]));
  const session = await LocalSession.create(toModelProto(g, outputs));

  const targets = (await session.run({ q, kv, y: randn([64], rng), ...teacher })).pred;
  const adam = new Adam(student, { lr: 1e-2 });
  const losses: number[] = [];
  for (let step = 0; step < 300; step++) {
    const out = await session.run({ q, kv, y: targets, ...student });
    losses.push(toNumbers(out.loss)[0]);
    adam.step(Object.fromEntries(names.map((k) => [k, out[`grad.${k}`] as Tensor<"f32">])));
  }
  await session.release();
  const first = losses[0];
  const last = Math.min(...losses.slice(-10));
  assert.ok(Number.isFinite(last), "loss stays finite");
  console.log(
    `loss ${first.toFixed(4)} -> ${last.toExponential(2)} (${(first / last).toFixed(0)}x)`,
  );
  assert.ok(first / last >= 10, `loss fell from ${first} to ${last} only (${first / last}x)`);
});

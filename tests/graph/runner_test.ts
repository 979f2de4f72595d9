import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { compileGraph, compileModel } from "../../src/graph/compile.ts";
import { Graph, type Value } from "../../src/graph/ir.ts";
import * as op from "../../src/graph/ops.ts";
import { compileRunner, inputsSpecOf, RunnerCache, runOnce } from "../../src/graph/runner.ts";
import { f32 } from "../../src/runtime/outputs.ts";
import { Tensor } from "../../src/tensor/tensor.ts";

const W = Float32Array.of(0.5, -1, 2, 3, 0.25, -4);

/** `y = x · W + bias` (W `[2, 3]` from `file` when given, else inline); `unused` feeds nothing. */
function affine(file?: string): { graph: Graph; outputs: Record<string, Value> } {
  const graph = new Graph();
  const x = graph.input("x", "f32", ["batch", 2]);
  const bias = graph.input("bias", "f32", [3]);
  graph.input("unused", "f32", [1]);
  const w = file === undefined
    ? graph.constant(new Tensor("f32", [2, 3], W.slice()), "w")
    : graph.external("w", "f32", [2, 3], { path: file, offset: 0, length: W.byteLength });
  return { graph, outputs: { y: op.add(op.matmul(x, w), bias) } };
}

const x = new Tensor("f32", [1, 2], Float32Array.of(1, 2));
const bias = new Tensor("f32", [3], Float32Array.of(0, 1, 0));
const WANT = [0.5 + 6, -1 + 0.5 + 1, 2 - 8]; // x · W + bias

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "liveedit-runner-"));
}

Deno.test("inputsSpecOf lists a traced graph's inputs in declaration order", () => {
  const { graph } = affine();
  assert.deepEqual(inputsSpecOf(graph), [
    { name: "x", dtype: "f32", shape: ["batch", 2] },
    { name: "bias", dtype: "f32", shape: [3] },
    { name: "unused", dtype: "f32", shape: [1] },
  ]);
});

Deno.test("compileGraph keeps a graph without weight files in memory and caches one with them", async () => {
  const dir = tempDir();
  try {
    const cacheDir = path.join(dir, "cache");
    const inline = affine();
    const mem = await compileGraph(inline.graph, inline.outputs, { cacheDir });
    assert.ok(mem.model instanceof Uint8Array);
    assert.ok(!fs.existsSync(cacheDir), "nothing is written for an in-memory model");
    const file = path.join(dir, "w.bin");
    fs.writeFileSync(file, new Uint8Array(W.buffer));
    const ext = affine(file);
    const disk = await compileGraph(ext.graph, ext.outputs, { cacheDir });
    const compiled = await compileModel(ext.graph, ext.outputs, { cacheDir });
    assert.equal(disk.model, compiled.path);
    assert.equal(disk.hash, compiled.hash);
    assert.ok(compiled.cached);

    const runner = await compileRunner(ext.graph, ext.outputs, { cacheDir, name: "affine" });
    try {
      assert.deepEqual(runner.inputNames, ["x", "bias"], "lowering dropped 'unused'");
      assert.deepEqual([...f32(await runner.run({ x, bias }), "y").data], WANT);
    } finally {
      await runner.release();
    }
    const once = await runOnce(inline.graph, inline.outputs, { x, bias, other: x });
    assert.deepEqual([...f32(once, "y").data], WANT);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("RunnerCache: one runner per key, keys of one compiled model share it, runs counted", async () => {
  const cache = new RunnerCache();
  let builds = 0;
  const build = () => (builds++, affine());
  try {
    const a = await cache.get("a", build);
    assert.equal(await cache.get("a", build), a);
    assert.equal(builds, 1, "a key is traced once");
    const b = await cache.get("b", build);
    assert.equal(b, a, "the same graph under another key shares the session");
    assert.equal(a.name, "a");
    const out = await cache.run("b", build, { x, bias, unrelated: bias });
    assert.deepEqual([...f32(out, "y").data], WANT);
    await cache.run("a", build, { x, bias });
    assert.equal(cache.stats.runs, 2);
    assert.equal(cache.stats.fedBytes, 2 * (2 + 3) * 4);
    await assert.rejects(
      cache.run("a", build, { x }),
      /session 'a' on cpu: no feed for input 'bias'/,
    );
    await assert.rejects(
      cache.get("bad", () => ({ graph: new Graph(), outputs: {} })),
      /no outputs requested/,
    );
    await assert.rejects(
      cache.get("bad", () => affine()).then((r) => r.run({})),
      /no feed for input 'x'/,
      "a failed key can be loaded again",
    );
  } finally {
    await cache.close();
  }
});

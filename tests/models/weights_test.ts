import assert from "node:assert/strict";
import { join } from "node:path";
import { compileModel } from "../../src/graph/compile.ts";
import { Graph } from "../../src/graph/ir.ts";
import * as op from "../../src/graph/ops.ts";
import { toModelProto } from "../../src/graph/onnx.ts";
import { openCheckpoint } from "../../src/io/sharded.ts";
import { writeSafetensors } from "../../src/io/safetensors.ts";
import { WeightStore } from "../../src/models/weights.ts";
import { LocalSession } from "../../src/runtime/session.ts";
import { randn } from "../../src/tensor/create.ts";
import { relErr } from "../../src/tensor/compare.ts";
import { storeNumbers, toNumbers } from "../../src/tensor/elements.ts";
import { Rng } from "../../src/tensor/rng.ts";
import type { Tensor } from "../../src/tensor/tensor.ts";

const rng = new Rng(7);
const w1 = randn([16, 8], rng);
const b1 = randn([16], rng);
const w2 = randn([4, 16], rng);
const x = randn([3, 8], rng);

/** The same two-layer MLP from any weight source. */
function mlp(g: Graph, get: (name: string) => ReturnType<Graph["input"]>) {
  const input = g.input("x", "f32", ["batch", 8]);
  return op.linear(
    op.relu(op.linear(input, get("fc1.weight"), get("fc1.bias"))),
    get("fc2.weight"),
  );
}

async function withTempDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "liveedit-weights-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("weights pointing into a .safetensors give the same output as inline weights", async () => {
  await withTempDir(async (dir) => {
    const weights = join(dir, "model");
    await Deno.mkdir(weights);
    await writeSafetensors(join(weights, "model.safetensors"), {
      "fc1.weight": w1,
      "fc1.bias": b1,
      "fc2.weight": w2,
    });
    const store = await WeightStore.open(await openCheckpoint(weights));

    const external = new Graph();
    const y = mlp(external, (name) => store.get(external, name));
    const compiled = await compileModel(external, { y }, { cacheDir: join(dir, "cache") });
    const onnxBytes = (await Deno.stat(compiled.path)).size;
    assert.ok(onnxBytes < 2048, `the .onnx holds no weights (${onnxBytes} bytes)`);

    const inline = new Graph();
    const table: Record<string, Tensor> = { "fc1.weight": w1, "fc1.bias": b1, "fc2.weight": w2 };
    const yInline = mlp(inline, (name) => inline.constant(table[name]));

    const a = await LocalSession.create(compiled.path);
    const b = await LocalSession.create(toModelProto(inline, { y: yInline }));
    const ya = (await a.run({ x })).y;
    const yb = (await b.run({ x })).y;
    await a.release();
    await b.release();
    assert.deepEqual(ya.shape, [3, 4]);
    assert.equal(relErr(ya, yb), 0);
    assert.equal(
      (await compileModel(external, { y }, { cacheDir: join(dir, "cache") })).cached,
      true,
    );
  });
});

Deno.test("f16 and bf16 weights are cast to f32 in the graph", async () => {
  await withTempDir(async (dir) => {
    const values = toNumbers(w1);
    await writeSafetensors(join(dir, "model.safetensors"), {
      half: storeNumbers("f16", w1.shape, values),
      brain: storeNumbers("bf16", w1.shape, values),
    });
    const store = await WeightStore.open(await openCheckpoint(dir));
    const g = new Graph();
    const half = store.get(g, "half", [16, 8]);
    const brain = store.get(g, "brain");
    assert.equal(half.dtype, "f32");
    assert.equal(store.get(g, "half"), half, "one initializer per weight and graph");
    const compiled = await compileModel(g, { half, brain }, { cacheDir: join(dir, "cache") });
    const s = await LocalSession.create(compiled.path);
    const out = await s.run({});
    await s.release();
    assert.ok(relErr(out.half, w1) < 1e-3, "f16 keeps ~3 decimal digits");
    assert.ok(relErr(out.brain, w1) < 1e-2, "bf16 keeps ~2 decimal digits");
  });
});

Deno.test("a missing weight or a wrong shape names the file and key", async () => {
  await withTempDir(async (dir) => {
    await writeSafetensors(join(dir, "model.safetensors"), { "fc1.weight": w1 });
    const store = await WeightStore.open(await openCheckpoint(dir));
    const g = new Graph();
    assert.throws(() => store.get(g, "fc1.wieght"), /no tensor 'fc1\.wieght'.*fc1\.weight/s);
    assert.throws(
      () => store.get(g, "fc1.weight", [8, 16]),
      (e: Error) =>
        e.message.includes("model.safetensors") && e.message.includes("'fc1.weight'") &&
        e.message.includes("[16, 8]") && e.message.includes("[8, 16]"),
    );
  });
});

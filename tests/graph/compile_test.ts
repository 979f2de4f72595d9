import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import * as ort from "onnxruntime-node";
import {
  cachedWeightsDir,
  clearCache,
  compileModel,
  graphCacheRoot,
} from "../../src/graph/compile.ts";
import { Graph, type Value } from "../../src/graph/ir.ts";
import { toModelProto } from "../../src/graph/onnx.ts";
import { Tensor } from "../../src/tensor/tensor.ts";

const WEIGHTS = new Float32Array([0.5, -1, 2, 3, 0.25, -4]);
const HEADER = 40; // junk bytes before the data, like a safetensors header

function tempDir(root = os.tmpdir()): string {
  return fs.mkdtempSync(path.join(root, "liveedit-compile-"));
}

/** Writes junk header + WEIGHTS (+ trailing junk) and returns the path. */
function writeWeights(dir: string, name = "model.safetensors"): string {
  const file = path.join(dir, name);
  const bytes = new Uint8Array(HEADER + WEIGHTS.byteLength + 8).fill(0x7b);
  bytes.set(new Uint8Array(WEIGHTS.buffer), HEADER);
  fs.writeFileSync(file, bytes);
  return file;
}

/** y = x · W (W is [2, 3]) with W either external from `file` or an inline constant. */
function buildGraph(file?: string): { g: Graph; y: Value } {
  const g = new Graph();
  const x = g.input("x", "f32", ["batch", 2]);
  const w = file === undefined
    ? g.constant(new Tensor("f32", [2, 3], WEIGHTS.slice()), "w")
    : g.external("w", "f32", [2, 3], { path: file, offset: HEADER, length: WEIGHTS.byteLength });
  const [y] = g.node("MatMul", [x, w], {}, [{ dtype: "f32", shape: ["batch", 3] }]);
  return { g, y };
}

async function runY(model: string | Uint8Array): Promise<number[]> {
  const session = typeof model === "string"
    ? await ort.InferenceSession.create(model)
    : await ort.InferenceSession.create(model);
  const x = new ort.Tensor("float32", new Float32Array([1, 2, -1, 0.5]), [2, 2]);
  const out = await session.run({ x });
  await session.release();
  return Array.from(out.y.data as Float32Array);
}

Deno.test("compileModel: external weights are hard-linked into the cache and match inline", async () => {
  const weightsDir = tempDir();
  const cacheDir = tempDir();
  try {
    const file = writeWeights(weightsDir);
    const { g, y } = buildGraph(file);
    const first = await compileModel(g, { y }, { cacheDir });
    assert.equal(first.cached, false);
    assert.match(first.hash, /^[0-9a-f]{64}$/);
    assert.equal(first.path, path.join(cacheDir, first.hash, "model.onnx"));

    const modelSize = fs.statSync(first.path).size;
    assert.ok(modelSize < 400, `model.onnx is ${modelSize} bytes; weights must stay external`);
    const entries = fs.readdirSync(path.dirname(first.path)).sort();
    assert.equal(entries.length, 2);
    const link = entries.find((e) => e !== "model.onnx")!;
    assert.match(link, /^w-[0-9a-f]{16}\.safetensors$/);
    const [a, b] = [fs.statSync(file), fs.statSync(path.join(path.dirname(first.path), link))];
    assert.equal(a.ino, b.ino, "the cache holds a hard link, not a copy");

    const inline = buildGraph();
    const expected = await runY(toModelProto(inline.g, { y: inline.y }));
    // x rows [1, 2] and [-1, 0.5] times W = [[0.5, -1, 2], [3, 0.25, -4]]
    assert.deepEqual(expected, [6.5, -0.5, -6, 1, 1.125, -4]);
    assert.deepEqual(await runY(first.path), expected);

    const mtime = fs.statSync(first.path).mtimeMs;
    const again = await compileModel(g, { y }, { cacheDir });
    assert.deepEqual(again, { ...first, cached: true });
    assert.equal(fs.statSync(first.path).mtimeMs, mtime, "a cache hit rewrites nothing");
    const rebuilt = buildGraph(file);
    assert.equal((await compileModel(rebuilt.g, { y: rebuilt.y }, { cacheDir })).hash, first.hash);
  } finally {
    fs.rmSync(weightsDir, { recursive: true, force: true });
    fs.rmSync(cacheDir, { recursive: true, force: true });
  }
});

Deno.test("compileModel: a changed weight file gets a new cache entry", async () => {
  const weightsDir = tempDir();
  const cacheDir = tempDir();
  try {
    const file = writeWeights(weightsDir);
    const { g, y } = buildGraph(file);
    const first = await compileModel(g, { y }, { cacheDir });
    // Replace the file (new inode, new mtime) with doubled weights.
    const doubled = new Uint8Array(HEADER + WEIGHTS.byteLength + 8);
    doubled.set(new Uint8Array(WEIGHTS.map((w) => 2 * w).buffer), HEADER);
    fs.rmSync(file);
    fs.writeFileSync(file, doubled);
    fs.utimesSync(file, new Date(2000, 0, 1), new Date(2000, 0, 1));
    const second = await compileModel(g, { y }, { cacheDir });
    assert.equal(second.cached, false);
    assert.notEqual(second.hash, first.hash);
    assert.deepEqual(await runY(second.path), [13, -1, -12, 2, 2.25, -8]);
    assert.deepEqual(await runY(first.path), [6.5, -0.5, -6, 1, 1.125, -4], "old entry intact");
  } finally {
    fs.rmSync(weightsDir, { recursive: true, force: true });
    fs.rmSync(cacheDir, { recursive: true, force: true });
  }
});

Deno.test("compileModel: symlinked weights (hub-cache layout) link the real file", async () => {
  const root = tempDir();
  const cacheDir = tempDir();
  try {
    fs.mkdirSync(path.join(root, "blobs"));
    fs.mkdirSync(path.join(root, "snapshots"));
    writeWeights(path.join(root, "blobs"), "abc123");
    const file = path.join(root, "snapshots", "model.safetensors");
    fs.symlinkSync("../blobs/abc123", file);
    const { g, y } = buildGraph(file);
    const compiled = await compileModel(g, { y }, { cacheDir });
    const link = fs.readdirSync(path.dirname(compiled.path)).find((e) => e !== "model.onnx")!;
    assert.ok(!fs.lstatSync(path.join(path.dirname(compiled.path), link)).isSymbolicLink());
    assert.deepEqual(await runY(compiled.path), [6.5, -0.5, -6, 1, 1.125, -4]);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
    fs.rmSync(cacheDir, { recursive: true, force: true });
  }
});

Deno.test("compileModel: graphs without external data, and clearCache", async () => {
  const cacheDir = tempDir();
  try {
    const { g, y } = buildGraph();
    const compiled = await compileModel(g, { y }, { cacheDir });
    assert.deepEqual(fs.readdirSync(path.dirname(compiled.path)), ["model.onnx"]);
    assert.deepEqual(fs.readFileSync(compiled.path), Buffer.from(toModelProto(g, { y })));
    const other = new Graph();
    const x = other.input("x", "f32", [2]);
    const [n] = other.node("Neg", [x], {}, [{ dtype: "f32", shape: [2] }]);
    const second = await compileModel(other, { n }, { cacheDir });
    assert.notEqual(second.hash, compiled.hash);
    fs.writeFileSync(path.join(cacheDir, "keep.txt"), "not a cache entry");
    fs.mkdirSync(cachedWeightsDir(cacheDir));
    fs.writeFileSync(path.join(cachedWeightsDir(cacheDir), `${"ab".repeat(32)}.safetensors`), "");
    fs.writeFileSync(path.join(cachedWeightsDir(cacheDir), "mine.safetensors"), "");
    assert.equal(await clearCache(cacheDir), 3, "two graphs and a cached copy of weights");
    assert.deepEqual(fs.readdirSync(cacheDir).sort(), ["keep.txt", "weights"]);
    assert.deepEqual(fs.readdirSync(cachedWeightsDir(cacheDir)), ["mine.safetensors"]);
    assert.equal(await clearCache(path.join(cacheDir, "missing")), 0);
    assert.equal((await compileModel(g, { y }, { cacheDir })).cached, false);
  } finally {
    fs.rmSync(cacheDir, { recursive: true, force: true });
  }
});

Deno.test("graphCacheRoot: cacheDir, then LIVEEDIT_CACHE, then XDG_CACHE_HOME", () => {
  const saved = { LIVEEDIT_CACHE: process.env.LIVEEDIT_CACHE, XDG: process.env.XDG_CACHE_HOME };
  try {
    process.env.LIVEEDIT_CACHE = "/tmp/le-cache";
    process.env.XDG_CACHE_HOME = "/tmp/xdg";
    assert.equal(graphCacheRoot("/tmp/explicit"), "/tmp/explicit");
    assert.equal(graphCacheRoot(), "/tmp/le-cache");
    delete process.env.LIVEEDIT_CACHE;
    assert.equal(graphCacheRoot(), path.join("/tmp/xdg", "liveedit", "graphs"));
    delete process.env.XDG_CACHE_HOME;
    assert.equal(graphCacheRoot(), path.join(os.homedir(), ".cache", "liveedit", "graphs"));
  } finally {
    for (
      const [key, value] of [["LIVEEDIT_CACHE", saved.LIVEEDIT_CACHE], [
        "XDG_CACHE_HOME",
        saved.XDG,
      ]] as const
    ) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  }
});

Deno.test("compileModel: a missing weight file is named in the error", async () => {
  const cacheDir = tempDir();
  try {
    const { g, y } = buildGraph(path.join(cacheDir, "nope.safetensors"));
    await assert.rejects(compileModel(g, { y }, { cacheDir }), /nope\.safetensors cannot be read/);
  } finally {
    fs.rmSync(cacheDir, { recursive: true, force: true });
  }
});

// The fallback needs weights on another filesystem than the cache: /dev/shm (tmpfs) vs tmpdir.
const otherFs = (() => {
  try {
    return fs.statSync("/dev/shm").dev !== fs.statSync(os.tmpdir()).dev &&
      fs.accessSync("/dev/shm", fs.constants.W_OK) === undefined;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "compileModel: across filesystems the model is written next to the weights",
  ignore: !otherFs,
  fn: async () => {
    const weightsDir = tempDir("/dev/shm");
    const cacheDir = tempDir();
    try {
      const file = writeWeights(weightsDir);
      const { g, y } = buildGraph(file);
      const first = await compileModel(g, { y }, { cacheDir });
      assert.equal(first.cached, false);
      assert.equal(
        first.path,
        path.join(fs.realpathSync(weightsDir), `liveedit-${first.hash}.onnx`),
      );
      assert.deepEqual(fs.readdirSync(cacheDir), [], "no partial cache entry is left behind");
      assert.deepEqual(await runY(first.path), [6.5, -0.5, -6, 1, 1.125, -4]);
      assert.deepEqual(await compileModel(g, { y }, { cacheDir }), { ...first, cached: true });

      // Weights in two directories on the other filesystem: no place for the model.
      fs.mkdirSync(path.join(weightsDir, "b"));
      const second = writeWeights(path.join(weightsDir, "b"));
      const x = g.input("x2", "f32", [1, 2]);
      const w2 = g.external("w2", "f32", [2, 3], { path: second, offset: HEADER, length: 24 });
      const [z] = g.node("MatMul", [x, w2], {}, [{ dtype: "f32", shape: [1, 3] }]);
      await assert.rejects(
        compileModel(g, { y, z }, { cacheDir }),
        /spread over 2 directories.*LIVEEDIT_CACHE/s,
      );
    } finally {
      fs.rmSync(weightsDir, { recursive: true, force: true });
      fs.rmSync(cacheDir, { recursive: true, force: true });
    }
  },
});

/**
 * A VLLM placed over `cpu:N` device Workers (`placeVllm`, the staged `VllmRunner`) computes what
 * one device computes: the forward pass, hidden states at a layer, the logits from a layer plus
 * a residual, and greedy generation with a KV cache per stage and a residual hook on its stage;
 * a plan that does not fit `--max-memory` fails before any Worker or session exists.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import * as op from "../../../src/graph/ops.ts";
import { paramInventoryOf } from "../../../src/models/backbones.ts";
import type { ResidualHook } from "../../../src/models/decoder.ts";
import { type TinyArch, tinyDims } from "../../../src/models/tiny/configs.ts";
import { tinyWeightSpecs } from "../../../src/models/tiny/weights.ts";
import { writeTinyModel } from "../../../src/models/tiny/write.ts";
import { loadVllm, placeVllm, type Vllm, VllmRunner } from "../../../src/models/vllm/mod.ts";
import { assertClose } from "../../../src/tensor/compare.ts";
import { randn } from "../../../src/tensor/create.ts";
import { Rng } from "../../../src/tensor/rng.ts";

const ARCHS: readonly TinyArch[] = ["blip2-opt", "llava", "minigpt4"];

async function withTiny(
  arch: TinyArch,
  fn: (vllm: Vllm, dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "liveedit-place-" });
  try {
    const model = await writeTinyModel(join(dir, "model"), { arch, seed: 3, layers: 5 });
    const vllm = await loadVllm(model.dir);
    try {
      await fn(vllm, dir);
    } finally {
      vllm.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A hook adding a fixed random residual (`[1, 1, d]`, broadcast) at the output of `layer`. */
function hookAt(vllm: Vllm, layer: number): ResidualHook {
  const residual = randn([1, 1, vllm.hiddenSize], new Rng(9), { std: 0.5 });
  return {
    layer,
    key: "test-hook",
    apply: (hidden) =>
      op.add(hidden, hidden.graph.input("hook/residual", "f32", [1, 1, vllm.hiddenSize])),
    feeds: { "hook/residual": residual },
  };
}

const SPLITS: readonly (readonly string[])[] = [["cpu:0", "cpu:1"], ["cpu:0", "cpu:1", "cpu:2"]];

for (const arch of ARCHS) {
  Deno.test(`${arch}: 2 and 3 stages on cpu:N Workers equal one device (forward, layers, generation)`, async () => {
    await withTiny(arch, async (vllm, dir) => {
      const cacheDir = join(dir, "graphs");
      const image = join(dir, "image.png");
      const one = new VllmRunner(vllm, { cacheDir });
      const inputs = await vllm.inputs([{
        text: "what is this thing",
        image: await tinyImage(image),
      }]);
      const batch = await vllm.prepare([
        { prompt: "what is shown", target: " a cat", image },
        { prompt: "a picture of", target: " the dog", image },
      ]);
      const want = await one.forward(batch);
      const hook = hookAt(vllm, 2);
      const wantGen = await one.generateFrom(inputs, { maxNewTokens: 5, hook });
      await one.close();
      for (const devices of SPLITS) {
        const placed = await placeVllm(vllm, { devices, cacheDir });
        try {
          const r = placed.runner;
          assert.deepEqual(r.stages.map((s) => s.device), devices);
          assert.equal(r.stages[r.stages.length - 1].to, vllm.numLayers);
          const got = await r.forward(batch);
          const where = `${arch} on ${devices.join(",")}`;
          assertClose(got.logits, want.logits, 1e-6, `${where}: logits`);
          got.layerOut.forEach((h, i) =>
            assertClose(h, want.layerOut[i], 1e-6, `${where}: layer ${i}`)
          );
          for (let l = 0; l < vllm.numLayers; l++) {
            const h = await r.hiddenAt(batch, l);
            assertClose(h, want.layerOut[l], 1e-6, `${where}: hiddenAt ${l}`);
            const logits = await r.logitsFrom(l, h, batch.attentionMask);
            assertClose(logits, want.logits, 1e-6, `${where}: logitsFrom ${l}`);
          }
          const gen = await r.generateFrom(inputs, { maxNewTokens: 5, hook });
          assert.deepEqual(gen.ids, wantGen.ids, `${where}: generation`);
          assert.ok(r.stats.runs > 0);
        } finally {
          await placed.close();
        }
      }
    });
  });
}

Deno.test("a plan over --max-memory fails before loading, naming each device's need and cap", async () => {
  await withTiny("llava", async (vllm, dir) => {
    const cacheDir = join(dir, "graphs");
    await assert.rejects(
      placeVllm(vllm, { devices: ["cpu:0", "cpu:1"], maxMemory: [200_000], cacheDir }),
      (e: Error) => {
        assert.match(e.message, /does not fit --max-memory: cpu:0 needs [\d.]+ MiB > 195\.3 KiB/);
        assert.match(
          e.message,
          /cpu:1: layers? [\d-]+, norm \+ head; parameters [\d.]+ KiB, reserve/,
        );
        return true;
      },
    );
    // nothing compiled, so nothing was loaded
    assert.equal(await exists(cacheDir), false);
    // the same model fits when the caps allow it, and the cuts follow --split-layers
    const placed = await placeVllm(vllm, {
      devices: ["cpu:0", "cpu:1"],
      splitLayers: [4],
      maxMemory: [64 * 2 ** 20],
      cacheDir,
    });
    assert.deepEqual(placed.runner.stages.map((s) => [s.from, s.to]), [[0, 4], [4, 5]]);
    await placed.close();
  });
});

Deno.test("the inventory from a checkpoint's headers is the architecture's weight list by part", async () => {
  for (const arch of ARCHS) {
    await withTiny(arch, async (vllm) => {
      const parts = await paramInventoryOf(vllm);
      const specs = tinyWeightSpecs(tinyDims(arch, { layers: 5 }));
      const size = (s: { shape: readonly number[] }) => s.shape.reduce((a, d) => a * d, 1);
      const total = specs.reduce((a, s) => a + size(s), 0);
      const tied = arch === "blip2-opt";
      const embed = specs.find((s) => s.name.endsWith("embed_tokens.weight"))!;
      const sum = parts.vision + parts.embeddings + parts.layers.reduce((a, b) => a + b, 0) +
        parts.head;
      assert.equal(sum, total + (tied ? size(embed) : 0), arch);
      // every layer the same size; a LLaMA layer is 4 d² (attention) + 3 d·ffn + 2 d (norms)
      assert.equal(new Set(parts.layers).size, 1);
      const d = 64;
      if (arch !== "blip2-opt") assert.equal(parts.layers[0], 4 * d * d + 3 * d * 192 + 2 * d);
      else assert.equal(parts.layers[0], 4 * (d * d + d) + 2 * (d * 256) + 256 + d + 4 * d);
      assert.equal(parts.head, tied ? size(embed) + 2 * d : 512 * d + d);
    });
  }
});

/** Writes a 32×32 PNG of a gradient to `path` and returns it. */
async function tinyImage(path: string): Promise<string> {
  const { default: sharp } = await import("sharp");
  const px = new Uint8Array(32 * 32 * 3).map((_, i) => (i * 37) % 256);
  await sharp(px, { raw: { width: 32, height: 32, channels: 3 } }).png().toFile(path);
  return path;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("VllmRunner: stages must cover every layer in order, each at least one", async () => {
  await withTiny("blip2-opt", async (vllm) => {
    for (
      const stages of [[], [{ from: 0, to: 3 }], [{ from: 0, to: 3 }, { from: 2, to: 5 }], [{
        from: 0,
        to: 0,
      }, { from: 0, to: 5 }]]
    ) {
      assert.throws(
        () => new VllmRunner(vllm, { stages }),
        /VllmRunner: stages .* do not cover the 5 layers of blip-2 in order, each at least one layer/,
      );
    }
    const r = new VllmRunner(vllm, { stages: [{ from: 0, to: 2 }, { from: 2, to: 5 }] });
    assert.deepEqual([r.stageOf(0), r.stageOf(1), r.stageOf(2), r.stageOf(4), r.stageOf(5)], [
      0,
      0,
      1,
      1,
      1,
    ]);
    await r.close();
  });
});

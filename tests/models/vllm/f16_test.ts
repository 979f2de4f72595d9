/**
 * The f16 compute path, run on ONNX Runtime's CPU provider: a make-tiny model whose float
 * weights are stored as f16, loaded with `computeDtype: "f16"`, against the f32 run of the same
 * f16-rounded weights. Bound: relErr ≤ 5e-3 (f16 rounds to ≈ 4.9e-4 relative; measured ≤ 1e-3
 * over the two decoder layers of these models), and no NaN or infinity anywhere, padded rows
 * included.
 *
 * @module
 */
import assert from "node:assert/strict";
import { copyFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { SafetensorsFile, writeSafetensors } from "../../../src/io/safetensors.ts";
import { openCheckpoint, SINGLE_FILE } from "../../../src/io/sharded.ts";
import type { TinyArch } from "../../../src/models/tiny/configs.ts";
import { writeTinyModel } from "../../../src/models/tiny/write.ts";
import { loadVllm, type Vllm, VllmRunner } from "../../../src/models/vllm/mod.ts";
import { computeDtypeFor, WeightStore } from "../../../src/models/weights.ts";
import { relErr } from "../../../src/tensor/compare.ts";
import { isFloat } from "../../../src/tensor/dtype.ts";
import { cast, map } from "../../../src/tensor/ops.ts";
import type { Tensor } from "../../../src/tensor/tensor.ts";
import { pixels, withTempDir } from "./_tiny.ts";

const BOUND = 5e-3;
const ARCHS: readonly TinyArch[] = ["blip2-opt", "llava", "minigpt4"];

/**
 * Copies model directory `from` to `to` with every float tensor of `model.safetensors` stored
 * as `dtype` after rounding to f16 (so both copies hold the same values).
 */
async function copyRounded(from: string, to: string, dtype: "f16" | "f32"): Promise<void> {
  await Deno.mkdir(to);
  for (const name of await readdir(from)) {
    if (name !== SINGLE_FILE) await copyFile(join(from, name), join(to, name));
  }
  const st = await SafetensorsFile.open(join(from, SINGLE_FILE));
  const tensors = await st.readAll();
  st.close();
  const rounded: Record<string, Tensor> = {};
  for (const [key, t] of Object.entries(tensors)) {
    rounded[key] = isFloat(t.dtype) ? cast(cast(t, "f16"), dtype) : t;
  }
  await writeSafetensors(join(to, SINGLE_FILE), rounded, { format: "pt" });
}

function assertFinite(t: Tensor, what: string): void {
  const data = t.data as Float32Array;
  assert.equal(t.dtype, "f32", `${what} is returned as f32`);
  const bad = data.findIndex((x) => !Number.isFinite(x));
  assert.equal(bad, -1, `${what}: element ${bad} is ${data[bad]}`);
}

/** Writes the tiny `arch` model as f16 and f16-rounded f32 copies; runs `fn` on both. */
async function withPair(
  arch: TinyArch,
  fn: (f16: Vllm, f32: Vllm, r16: VllmRunner, r32: VllmRunner) => Promise<void>,
): Promise<void> {
  await withTempDir(async (dir) => {
    await writeTinyModel(join(dir, "tiny"), { arch, seed: 3, layers: 2 });
    await copyRounded(join(dir, "tiny"), join(dir, "f16"), "f16");
    await copyRounded(join(dir, "tiny"), join(dir, "f32"), "f32");
    const f16 = await loadVllm(join(dir, "f16"), { computeDtype: "f16" });
    const f32 = await loadVllm(join(dir, "f32"));
    const r16 = new VllmRunner(f16, { cacheDir: join(dir, "graphs") });
    const r32 = new VllmRunner(f32, { cacheDir: join(dir, "graphs") });
    try {
      assert.equal(f16.computeDtype, "f16");
      assert.equal(f32.computeDtype, "f32");
      await fn(f16, f32, r16, r32);
    } finally {
      await r16.close();
      await r32.close();
      f16.close();
      f32.close();
    }
  });
}

for (const arch of ARCHS) {
  Deno.test(`${arch}: f16 compute matches f32 on the same weights (relErr ≤ ${BOUND}), no NaN`, async () => {
    await withPair(arch, async (f16, _f32, r16, r32) => {
      const size = f16.imageSize;
      const requests = [
        { prompt: "what is this?", target: "a cat", image: pixels(1, size, 1) },
        {
          prompt: "a photo of a",
          target: " dog on the grass near a tree",
          image: pixels(1, size, 2),
        },
      ];
      for (const rows of [requests, requests.map(({ prompt, target }) => ({ prompt, target }))]) {
        const batch = await f16.prepare(rows);
        assert.ok(batch.lengths[0] < batch.lengths[1], "row 0 is padded");
        const a = await r16.forward(batch);
        const b = await r32.forward(batch);
        const errors = [relErr(a.inputsEmbeds, b.inputsEmbeds)];
        a.layerOut.forEach((h, l) => {
          assertFinite(h, `layer_out.${l}`);
          errors.push(relErr(h, b.layerOut[l]));
        });
        assertFinite(a.logits, "logits");
        errors.push(relErr(a.logits, b.logits));
        for (const e of errors) assert.ok(e <= BOUND, `relErr ${e} > ${BOUND}`);

        // the continuation graph (hidden + residual → logits, losses) stays f32 at its ends
        const layer = 0;
        const hidden = a.layerOut[layer];
        const residual = map(hidden, (x) => 0.1 * x);
        const la = await r16.losses(layer, batch, hidden, residual, a.logits);
        const lb = await r32.losses(layer, batch, hidden, residual, a.logits);
        assertFinite(la.logits, "continuation logits");
        assert.ok(Number.isFinite(la.labelLoss) && Number.isFinite(la.klLoss));
        assert.ok(relErr(la.logits, lb.logits) <= BOUND);
        assert.ok(Math.abs(la.labelLoss - lb.labelLoss) <= BOUND * Math.abs(lb.labelLoss));
        assert.ok(Math.abs(la.klLoss - lb.klLoss) <= BOUND);
      }
    });
  });

  Deno.test(`${arch}: f16 greedy generation with the KV cache follows the forward pass`, async () => {
    await withPair(arch, async (f16, _f32, r16) => {
      const input = { text: "what is this?", image: pixels(1, f16.imageSize, 1) };
      const gen = await r16.generate(input, { maxNewTokens: 4 });
      assert.ok(gen.ids.length >= 1 || gen.stopped === "eos");
      // each generated token is the argmax of the uncached f16 forward pass over its prefix
      const tokenizer = await f16.tokenizer();
      const base = await f16.inputs([input]);
      const ids = [...base.layouts[0].ids];
      for (const next of gen.ids) {
        const layout = { ids, vision: base.layouts[0].vision };
        const inputs = f16.inputsFromLayouts(
          [layout],
          f16.padId(tokenizer),
          base.feeds.pixel_values as Tensor<"f32">,
        );
        const { logits } = await r16.forward(inputs);
        const [, s, v] = logits.shape;
        const row = (logits.data as Float32Array).subarray((s - 1) * v, s * v);
        assert.equal(next, row.indexOf(Math.max(...row)));
        ids.push(next);
      }
    });
  });
}

Deno.test("computeDtypeFor: f16 only on a GPU for an f16 checkpoint", async () => {
  await withTempDir(async (dir) => {
    await writeTinyModel(join(dir, "tiny"), { arch: "blip2-opt", layers: 1 });
    await copyRounded(join(dir, "tiny"), join(dir, "f16"), "f16");
    const open = async (d: string) => {
      const ckpt = await openCheckpoint(join(dir, d));
      try {
        return await WeightStore.open(ckpt);
      } finally {
        ckpt.close();
      }
    };
    const f16 = await open("f16"), f32 = await open("tiny");
    assert.equal(f16.floatDtype, "f16");
    assert.equal(f32.floatDtype, "f32");
    assert.equal(computeDtypeFor("cpu", f16), "f32");
    assert.equal(computeDtypeFor("cpu:1", f16), "f32");
    assert.equal(computeDtypeFor("cuda:0", f16), "f16");
    assert.equal(computeDtypeFor("webgpu", f16), "f16");
    assert.equal(computeDtypeFor("cuda:0", f32), "f32");
    assert.throws(() => computeDtypeFor("gpu", f16), /unknown device 'gpu'/);
    // loadVllm chooses by device (loading needs no GPU: sessions are created on first run)
    for (const [device, want] of [["cuda:0", "f16"], ["cpu", "f32"]] as const) {
      const vllm = await loadVllm(join(dir, "f16"), { device });
      assert.equal(vllm.computeDtype, want);
      assert.equal(vllm.dtype, "f32");
      vllm.close();
    }
  });
});

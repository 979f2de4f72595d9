import assert from "node:assert/strict";
import { join } from "node:path";
import {
  checkpointEditorConfig,
  latestCheckpoint,
  loadCheckpoint,
  saveCheckpoint,
  type TrainingCheckpoint,
} from "../../src/train/checkpoint.ts";
import { Adam } from "../../src/train/adam.ts";
import { Rng } from "../../src/tensor/rng.ts";
import { Tensor } from "../../src/tensor/tensor.ts";

const MODEL = "liveedit/tiny-test";

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "liveedit-ckpt-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Weights named like the authors', an Adam trained `steps` steps on seeded gradients. */
function trained(steps: number, seed = 1) {
  const rng = new Rng(seed);
  const randn = (n: number) => Float32Array.from({ length: n }, () => rng.normal());
  const weights = {
    "edit_extractor.eqe1": new Tensor("f32", [1, 2, 3], randn(6)),
    "moegen_c.att.Wq.weight": new Tensor("f32", [3, 3], randn(9)),
    "instant_reps_norm.bias": new Tensor("f32", [5], randn(5)),
  };
  const adam = new Adam(weights, { lr: 1e-2 });
  const grads = () =>
    Object.fromEntries(Object.entries(weights).map(([k, t]) => [k, randn(t.size)]));
  for (let i = 0; i < steps; i++) adam.step(grads());
  return { weights, adam, rng, grads };
}

function checkpointOf(t: ReturnType<typeof trained>, step: number): TrainingCheckpoint {
  return {
    model: MODEL,
    weights: t.weights,
    adam: t.adam.state(),
    step,
    epoch: 2,
    emaLoss: 0.125,
    rng: t.rng.state(),
  };
}

Deno.test("checkpoint round trip restores weights, Adam state and RNG exactly", async () => {
  await withTempDir(async (dir) => {
    const t = trained(3);
    const info = await saveCheckpoint(dir, "step-3", checkpointOf(t, 3));
    assert.equal(info.jsonPath, join(dir, "step-3.json"));
    const json = JSON.parse(await Deno.readTextFile(info.jsonPath));
    assert.equal(json.bytes, (await Deno.stat(join(dir, "step-3.safetensors"))).size);
    const ckpt = await loadCheckpoint(info.jsonPath, { model: MODEL, weights: t.weights });
    assert.equal(ckpt.step, 3);
    assert.equal(ckpt.epoch, 2);
    assert.equal(ckpt.emaLoss, 0.125);
    assert.deepEqual(
      Object.keys(ckpt.adam.tensors).sort(),
      Object.keys(t.adam.state().tensors).sort(),
    );
    for (const [k, v] of Object.entries(t.adam.state().tensors)) {
      assert.deepEqual([...ckpt.adam.tensors[k].data], [...v.data], k);
    }
    // Resume: a fresh Adam over the loaded weights continues bit for bit like the original.
    const resumed = new Adam(ckpt.weights, { lr: 1e-2 });
    resumed.load(ckpt.adam);
    const rng = Rng.fromState(ckpt.rng);
    const g = t.grads();
    const randn = (n: number) => Float32Array.from({ length: n }, () => rng.normal());
    const g2 = Object.fromEntries(
      Object.keys(t.weights).map((k) => [k, randn(ckpt.weights[k].size)]),
    );
    for (const k of Object.keys(g)) assert.deepEqual([...g2[k]], [...g[k]], "rng stream resumed");
    t.adam.step(g);
    resumed.step(g2);
    for (const [k, w] of Object.entries(t.weights)) {
      assert.deepEqual([...ckpt.weights[k].data], [...w.data], k);
    }
    assert.equal(resumed.stepCount, 4);
  });
});

Deno.test("a checkpoint carries the editor config it was trained with; older ones have none", async () => {
  await withTempDir(async (dir) => {
    const t = trained(1);
    const editorConfig = { llm_mid_dim: 8, train_cfg: { lr: 0.5, lr_cut_it: [3, 9] } };
    const withConfig = await saveCheckpoint(dir, "with", { ...checkpointOf(t, 1), editorConfig });
    assert.deepEqual(await checkpointEditorConfig(withConfig.jsonPath), editorConfig);
    const loaded = await loadCheckpoint(withConfig.jsonPath, { model: MODEL, weights: t.weights });
    assert.deepEqual(loaded.editorConfig, editorConfig);
    // a checkpoint written without one (as before configs were stored) loads as before
    const without = await saveCheckpoint(dir, "without", checkpointOf(t, 1));
    const json = JSON.parse(await Deno.readTextFile(without.jsonPath));
    assert.ok(!("editorConfig" in json));
    assert.equal(await checkpointEditorConfig(without.jsonPath), undefined);
    assert.equal(
      (await loadCheckpoint(without.jsonPath, { model: MODEL })).editorConfig,
      undefined,
    );
    await Deno.writeTextFile(join(dir, "other.json"), JSON.stringify({ format: "x" }));
    await assert.rejects(
      checkpointEditorConfig(join(dir, "other.json")),
      /other\.json: not a LiveEdit checkpoint/,
    );
  });
});

Deno.test("loading another model's checkpoint or other shapes fails naming the file", async () => {
  await withTempDir(async (dir) => {
    const t = trained(1);
    const { jsonPath } = await saveCheckpoint(dir, "a", checkpointOf(t, 1));
    await assert.rejects(
      () => loadCheckpoint(jsonPath, { model: "liveedit/llava-v1.5-7b" }),
      /a\.json: checkpoint is for model "liveedit\/tiny-test", expected "liveedit\/llava-v1\.5-7b"/,
    );
    const other = { ...t.weights, "moegen_c.att.Wq.weight": { shape: [4, 3] } };
    await assert.rejects(
      () => loadCheckpoint(jsonPath, { model: MODEL, weights: other }),
      /a\.safetensors: tensor "moegen_c\.att\.Wq\.weight" has shape \[3, 3\], expected \[4, 3\]/,
    );
    const extra = { ...t.weights, "moegen_r.phi": { shape: [1] } };
    await assert.rejects(
      () => loadCheckpoint(jsonPath, { model: MODEL, weights: extra }),
      /a\.safetensors: tensor "moegen_r\.phi" is missing/,
    );
    await assert.rejects(
      () =>
        saveCheckpoint(dir, "b", {
          ...checkpointOf(t, 1),
          adam: {
            step: 1,
            tensors: { "exp_avg.nope": new Tensor("f32", [1], new Float32Array(1)) },
          },
        }),
      /b\.safetensors: Adam tensor "exp_avg\.nope" does not belong to a weight/,
    );
    await assert.rejects(() => saveCheckpoint(dir, "../x", checkpointOf(t, 1)), /checkpoint name/);
  });
});

Deno.test("latestCheckpoint skips incomplete checkpoints; a replaced file fails its hash", async () => {
  await withTempDir(async (dir) => {
    assert.equal(await latestCheckpoint(dir), undefined);
    const t = trained(2);
    await saveCheckpoint(dir, "step-1", checkpointOf(t, 1));
    await saveCheckpoint(dir, "step-2", checkpointOf(t, 2));
    // What crashes can leave behind for a step-3 save:
    await Deno.writeFile(join(dir, ".step-3.safetensors.0000.tmp"), new Uint8Array(100));
    await Deno.copyFile(join(dir, "step-2.safetensors"), join(dir, "step-3.safetensors"));
    // ... and a JSON whose tensors file is shorter than recorded (hand-made, as no order of
    // our writes produces it):
    const json = JSON.parse(await Deno.readTextFile(join(dir, "step-2.json")));
    await Deno.writeTextFile(
      join(dir, "step-4.json"),
      JSON.stringify({ ...json, step: 4, tensors: "step-4.safetensors" }),
    );
    await Deno.writeFile(join(dir, "step-4.safetensors"), new Uint8Array(10));
    const latest = await latestCheckpoint(dir);
    assert.equal(latest?.name, "step-2");
    assert.equal((await loadCheckpoint(latest!.jsonPath, { model: MODEL })).step, 2);
    // Same-size but different contents: found by the hash check on load.
    const bytes = await Deno.readFile(join(dir, "step-1.safetensors"));
    bytes[bytes.length - 1] ^= 1;
    await Deno.writeFile(join(dir, "step-1.safetensors"), bytes);
    await assert.rejects(
      () => loadCheckpoint(join(dir, "step-1.json"), { model: MODEL }),
      /step-1\.safetensors: contents do not match .*step-1\.json/,
    );
  });
});

Deno.test("a save that fails leaves the previous checkpoint of that name loadable", async () => {
  await withTempDir(async (dir) => {
    const t = trained(1);
    await saveCheckpoint(dir, "last", checkpointOf(t, 1));
    const bad = {
      ...checkpointOf(t, 2),
      weights: { ...t.weights, "exp_avg.x": t.weights["instant_reps_norm.bias"] },
    };
    await assert.rejects(
      () => saveCheckpoint(dir, "last", bad),
      /collides with the Adam state names/,
    );
    const ckpt = await loadCheckpoint(join(dir, "last.json"), { model: MODEL });
    assert.equal(ckpt.step, 1);
  });
});

Deno.test("SIGKILL during checkpoint writes: the latest complete checkpoint loads", async () => {
  await withTempDir(async (dir) => {
    const module = new URL("../../src/train/checkpoint.ts", import.meta.url).href;
    const adamModule = new URL("../../src/train/adam.ts", import.meta.url).href;
    const tensorModule = new URL("../../src/tensor/tensor.ts", import.meta.url).href;
    // Each checkpoint is ~24 MB (2M weights + 2 moments), so the kill lands mid-write.
    const code = `
      import { saveCheckpoint } from ${JSON.stringify(module)};
      import { Adam } from ${JSON.stringify(adamModule)};
      import { Tensor } from ${JSON.stringify(tensorModule)};
      const w = new Tensor("f32", [2048, 1024], new Float32Array(2048 * 1024));
      const adam = new Adam({ w });
      for (let step = 1; ; step++) {
        w.data.fill(step);
        await saveCheckpoint(${JSON.stringify(dir)}, "step-" + step, {
          model: "m", weights: { w }, adam: adam.state(), step, epoch: 0, emaLoss: null,
          rng: { algorithm: "xoshiro128**", words: [1, 2, 3, 4] },
        });
        console.log(step);
      }`;
    const child = new Deno.Command(Deno.execPath(), { args: ["eval", code], stdout: "piped" })
      .spawn();
    let saved = 0, text = "", killed = false;
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      text += chunk;
      saved = text.split("\n").filter((l) => l !== "").length;
      if (!killed && saved >= 3) {
        killed = true;
        await new Promise((r) => setTimeout(r, 15));
        child.kill("SIGKILL");
      }
    }
    assert.equal((await child.status).signal, "SIGKILL");
    const latest = await latestCheckpoint(dir);
    assert.ok(
      latest !== undefined && latest.step >= saved,
      `latest ${latest?.step}, saved ${saved}`,
    );
    const ckpt = await loadCheckpoint(latest.jsonPath, { model: "m" });
    assert.ok(ckpt.weights.w.data.every((x) => x === latest.step));
  });
});

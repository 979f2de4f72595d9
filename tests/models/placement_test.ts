/**
 * The placement planner (`src/models/placement.ts`): balanced cuts against a brute-force search
 * over every cut, `--split-layers`, the editor on the stage of its layer or its own device,
 * the reserve, the inventory's classification, and `--max-memory` errors with numbers.
 */
import assert from "node:assert/strict";
import {
  formatBytes,
  formatPlacement,
  type ParamInventory,
  paramInventory,
  planPlacement,
  reserveBytes,
} from "../../src/models/placement.ts";
import { Rng } from "../../src/tensor/rng.ts";

const SHAPE = { hiddenSize: 8, numHeads: 2, numKvHeads: 1, headDim: 4, vocabSize: 32 };
const TINY_RESERVE = { sequences: 1, tokens: 2 };

/** Every way to cut `n` layers into `k` non-empty stages (the first layers of stages 1..k-1). */
function* allCuts(n: number, k: number, from = 1): Generator<number[]> {
  if (k === 1) {
    yield [];
    return;
  }
  for (let c = from; c <= n - (k - 1); c++) {
    for (const rest of allCuts(n, k - 1, c + 1)) yield [c, ...rest];
  }
}

Deno.test("balanced cuts minimise the largest device need (brute force over every cut)", () => {
  const rng = new Rng(11);
  for (let trial = 0; trial < 40; trial++) {
    const n = 3 + rng.int(8), k = 1 + rng.int(Math.min(4, n));
    const parts: ParamInventory = {
      vision: rng.int(400),
      embeddings: rng.int(200),
      layers: Array.from({ length: n }, () => 10 + rng.int(90)),
      head: rng.int(300),
    };
    const devices = Array.from({ length: k }, (_, i) => `cpu:${i}`);
    const editor = { layer: rng.int(n), bytes: rng.int(500) };
    const caps = rng.int(2) === 0 ? undefined : devices.map(() => 2000 + rng.int(4000));
    const plan = (splitLayers?: number[]) =>
      planPlacement({
        parts,
        shape: SHAPE,
        devices,
        bytesPerParam: 4,
        editor,
        splitLayers,
        reserve: TINY_RESERVE,
        maxMemory: undefined,
      });
    const worst = (p: ReturnType<typeof plan>) =>
      Math.max(...p.stages.map((s, i) => s.peakBytes / (caps?.[i] ?? 1)));
    let best = Infinity;
    for (const cuts of allCuts(n, k)) best = Math.min(best, worst(plan(cuts)));
    const balanced = planPlacement({
      parts,
      shape: SHAPE,
      devices,
      bytesPerParam: 4,
      editor,
      reserve: TINY_RESERVE,
      maxMemory: caps?.map((c) => c * 1000), // large enough to fit: only the weighting matters
    });
    const got = Math.max(...balanced.stages.map((s, i) => s.peakBytes / (caps?.[i] ?? 1)));
    assert.ok(Math.abs(got - best) <= 1e-12 * best, `trial ${trial}: ${got} vs best ${best}`);
    // contiguous, non-empty, covering every layer; the editor with its layer
    assert.equal(balanced.stages[0].from, 0);
    assert.equal(balanced.stages[k - 1].to, n);
    balanced.stages.forEach((s, i) => {
      assert.ok(s.from < s.to);
      if (i > 0) assert.equal(s.from, balanced.stages[i - 1].to);
    });
    const at = balanced.stages.findIndex((s) => s.from <= editor.layer && editor.layer < s.to);
    assert.deepEqual(balanced.editor, { device: devices[at], stage: at, bytes: editor.bytes });
    assert.equal(balanced.stages[at].editorBytes, editor.bytes);
  }
});

Deno.test("--split-layers sets the cuts; bytes per stage are parts x dtype + editor + reserve", () => {
  const parts = { vision: 100, embeddings: 50, layers: [10, 20, 30, 40], head: 60 };
  const plan = planPlacement({
    parts,
    shape: SHAPE,
    devices: ["cuda:0", "cuda:1"],
    bytesPerParam: 2,
    editor: { layer: 1, bytes: 1000 },
    splitLayers: [3],
    reserve: TINY_RESERVE,
  });
  const [a, b] = plan.stages;
  assert.deepEqual([a.from, a.to, b.from, b.to], [0, 3, 3, 4]);
  assert.deepEqual(a.modules, ["vision", "embeddings", "layers 0-2", "editor"]);
  assert.deepEqual(b.modules, ["layer 3", "norm + head"]);
  assert.equal(a.paramBytes, 2 * (100 + 50 + 10 + 20 + 30));
  assert.equal(b.paramBytes, 2 * (40 + 60));
  assert.equal(a.editorBytes, 1000);
  assert.equal(a.reserveBytes, reserveBytes(SHAPE, TINY_RESERVE, 3, false, 2));
  assert.equal(b.reserveBytes, reserveBytes(SHAPE, TINY_RESERVE, 1, true, 2));
  assert.equal(a.peakBytes, a.paramBytes + a.editorBytes + a.reserveBytes);
  // the reserve: KV cache 2·layers·kv·head_dim, 8 hidden buffers and the scores per token,
  // and the logits (compute dtype + f32) on the last stage
  assert.equal(
    reserveBytes(SHAPE, { sequences: 2, tokens: 3 }, 2, false, 4),
    4 * (2 * 2 * 4 * 6 + 2 * (8 * 3 * 8 + 2 * 9)),
  );
  assert.equal(
    reserveBytes(SHAPE, { sequences: 1, tokens: 1 }, 0, true, 2),
    32 * (2 + 4),
  );
  assert.match(formatPlacement(plan).join("\n"), /f16 weights; reserve for 1 x 2 tokens/);
  for (const cuts of [[0], [4], [2, 3], [3.5]]) {
    assert.throws(
      () =>
        planPlacement({
          parts,
          shape: SHAPE,
          devices: ["cuda:0", "cuda:1"],
          bytesPerParam: 2,
          splitLayers: cuts,
        }),
      /--split-layers .*: expected 1 increasing layer indices within 1\.\.3/,
    );
  }
  assert.throws(
    () =>
      planPlacement({
        parts,
        shape: SHAPE,
        devices: ["a", "b", "c", "d", "e"].map((x) => `cpu:${x.length}`),
        bytesPerParam: 4,
      }),
    /5 devices for 4 decoder layers/,
  );
});

Deno.test("--editor-device: the editor's bytes go to that device, a stage's or its own", () => {
  const parts = { vision: 0, embeddings: 0, layers: [10, 10, 10, 10], head: 0 };
  const base = {
    parts,
    shape: SHAPE,
    devices: ["cpu:0", "cpu:1"],
    bytesPerParam: 4,
    reserve: TINY_RESERVE,
  };
  const shared = planPlacement({ ...base, editor: { layer: 0, bytes: 7, device: "cpu:1" } });
  assert.deepEqual(shared.editor, { device: "cpu:1", stage: 1, bytes: 7 });
  assert.equal(shared.stages[0].editorBytes, 0);
  assert.equal(shared.stages[1].editorBytes, 7);
  const own = planPlacement({ ...base, editor: { layer: 0, bytes: 7, device: "cpu:5" } });
  assert.deepEqual(own.editor, { device: "cpu:5", stage: null, bytes: 7 });
  assert.ok(own.stages.every((s) => s.editorBytes === 0 && !s.holdsEditor));
  assert.match(formatPlacement(own).at(-1)!, /^ {2}cpu:5: editor 7 B$/);
  assert.throws(
    () => planPlacement({ ...base, editor: { layer: 4, bytes: 1 } }),
    /edit layer 4 is not a layer 0\.\.3/,
  );
});

Deno.test("--max-memory: one cap or one per device; over it, an error with every device's numbers", () => {
  const parts = { vision: 1000, embeddings: 0, layers: [500, 500, 500], head: 0 };
  const base = {
    parts,
    shape: SHAPE,
    devices: ["cpu:0", "cpu:1"],
    bytesPerParam: 4,
    reserve: { sequences: 1, tokens: 1 },
  };
  // uneven caps move the cut: the small device gets less
  assert.deepEqual(planPlacement(base).stages.map((s) => [s.from, s.to]), [[0, 1], [1, 3]]);
  const plan = planPlacement({ ...base, maxMemory: [9000, 3000] });
  assert.deepEqual(plan.stages.map((s) => [s.from, s.to]), [[0, 2], [2, 3]]);
  assert.deepEqual(plan.stages.map((s) => s.maxBytes), [9000, 3000]);
  assert.throws(
    () => planPlacement({ ...base, maxMemory: [3000] }),
    (e: Error) => {
      assert.match(
        e.message,
        /does not fit --max-memory: cpu:0 needs [\d.]+ KiB > 2\.9 KiB; cpu:1 needs [\d.]+ KiB > 2\.9 KiB/,
      );
      assert.match(e.message, /The best placement found:\nplacement \(f32 weights/);
      assert.match(
        e.message,
        /cpu:1: layers 1-2, norm \+ head; parameters 3\.9 KiB, reserve \d+ B, estimated peak [\d.]+ KiB \(max 2\.9 KiB\)/,
      );
      return true;
    },
  );
  assert.throws(
    () => planPlacement({ ...base, maxMemory: [1, 2, 3] }),
    /3 max memory values for 2 devices/,
  );
  assert.throws(() => planPlacement({ ...base, maxMemory: [0] }), /must be positive/);
});

Deno.test("paramInventory: layers by index, embeddings, head (with the tied table), the rest vision", () => {
  const t = (name: string, ...shape: number[]) => ({ name, shape });
  const tensors = [
    t("vision_model.embeddings.patch_embedding.weight", 4, 3, 2, 2),
    t("qformer.layernorm.weight", 4),
    t("language_projection.weight", 8, 4),
    t("language_model.model.decoder.embed_tokens.weight", 32, 8),
    t("language_model.model.decoder.embed_positions.weight", 10, 8),
    t("language_model.model.decoder.layers.0.fc1.weight", 16, 8),
    t("language_model.model.decoder.layers.1.fc1.weight", 16, 8),
    t("language_model.model.decoder.layers.1.fc1.bias", 16),
    t("language_model.model.decoder.final_layer_norm.weight", 8),
  ];
  const path = "language_model.model.decoder.layers";
  assert.deepEqual(paramInventory(tensors, path, 2, true), {
    vision: 48 + 4 + 32,
    embeddings: 256 + 80,
    layers: [128, 144],
    head: 8 + 256,
  });
  assert.equal(paramInventory(tensors, path, 2, false).head, 8);
  assert.throws(
    () => paramInventory(tensors, path, 1, false, "model.safetensors"),
    /model.safetensors: tensor 'language_model.model.decoder.layers.1.fc1.weight' is not in a layer 0\.\.0/,
  );
});

Deno.test("formatBytes: binary units, one decimal", () => {
  assert.equal(formatBytes(300), "300 B");
  assert.equal(formatBytes(1536), "1.5 KiB");
  assert.equal(formatBytes(32 * 2 ** 30), "32.0 GiB");
});

import assert from "node:assert/strict";
import { join } from "node:path";
import { configJson, loadConfig, SHIPPED_CONFIGS } from "../../../src/editors/liveedit/config.ts";
import { resolveRunConfig } from "../../../src/editors/liveedit/run_config.ts";
import { Adam } from "../../../src/train/adam.ts";
import { saveCheckpoint } from "../../../src/train/checkpoint.ts";
import { Rng } from "../../../src/tensor/rng.ts";
import { Tensor } from "../../../src/tensor/tensor.ts";

/** A checkpoint in `dir` storing `editorConfig` (none when undefined); returns its JSON path. */
async function checkpointWith(dir: string, name: string, editorConfig?: unknown) {
  const w = new Tensor("f32", [2], new Float32Array(2));
  const info = await saveCheckpoint(dir, name, {
    model: "liveedit/tiny",
    weights: { w },
    adam: new Adam({ w }).state(),
    step: 1,
    epoch: 1,
    emaLoss: 1,
    rng: new Rng(0).state(),
    editorConfig,
  });
  return info.jsonPath;
}

/** The tiny config's JSON layout. */
interface ConfigJson {
  edit_layer_i: number;
  retrieval_editor: Record<string, unknown>;
  train_cfg: Record<string, unknown>;
}

/** The tiny config's JSON with `edit` applied. */
function tinyJson(edit: (c: ConfigJson) => void): ConfigJson {
  const c = structuredClone(SHIPPED_CONFIGS.tiny) as ConfigJson;
  edit(c);
  return c;
}

Deno.test("resolveRunConfig: --editor-config, else the checkpoint's stored config, else the shipped one", async () => {
  const dir = await Deno.makeTempDir({ prefix: "liveedit-runcfg-" });
  try {
    const modelDir = join(dir, "model");
    await Deno.mkdir(modelDir);
    await Deno.writeTextFile(
      join(modelDir, "config.json"),
      JSON.stringify({ model_type: "llava" }),
    );
    const model = { modelDir, modelName: "tiny" };
    // nothing stored, nothing named: the backbone's shipped config (by model_type, by name)
    const shipped = await resolveRunConfig(model);
    assert.deepEqual(shipped.config, await loadConfig("llava"));
    assert.equal(shipped.stored, undefined);
    const byName = await resolveRunConfig({ modelDir, modelName: "blip2-opt-2.7b" });
    assert.deepEqual(byName.config, await loadConfig("blip2"));
    // a checkpoint of an older version (no stored config): as before
    const old = await checkpointWith(dir, "old");
    assert.deepEqual(
      (await resolveRunConfig({ ...model, checkpoint: old })).config,
      shipped.config,
    );
    // the stored config, read back, names the checkpoint as its source
    const json = tinyJson((c) => (c.retrieval_editor.module_dim = 16));
    const ckpt = await checkpointWith(dir, "new", json);
    const stored = await resolveRunConfig({ ...model, checkpoint: ckpt });
    assert.equal(stored.config.dims.moduleDim, 16);
    assert.deepEqual(configJson(stored.config), {
      ...json,
      train_cfg: { ...json.train_cfg, edit_layer_twice: false },
    });
    assert.equal(stored.config.source, `stored in checkpoint ${ckpt}`);
    assert.deepEqual(stored.stored, stored.config);
    // an override with the same dims wins (here: another learning rate and edit layer)
    const file = join(dir, "override.json");
    await Deno.writeTextFile(
      file,
      JSON.stringify(tinyJson((c) => {
        c.retrieval_editor.module_dim = 16;
        c.train_cfg.lr = 0.25;
        c.edit_layer_i = 1;
      })),
    );
    const over = await resolveRunConfig({ ...model, checkpoint: ckpt, editorConfig: file });
    assert.deepEqual([over.config.train.lr, over.config.editLayerI], [0.25, 1]);
    assert.equal(over.config.source, file);
    assert.equal(over.stored?.dims.moduleDim, 16);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("resolveRunConfig: an override whose dims do not fit the checkpoint names the file, the checkpoint and each dim", async () => {
  const dir = await Deno.makeTempDir({ prefix: "liveedit-runcfg-" });
  try {
    const json = tinyJson((c) => {
      c.retrieval_editor.module_dim = 16;
      c.retrieval_editor.eqe_n = 2;
    });
    const ckpt = await checkpointWith(dir, "run", json);
    const model = { modelDir: dir, modelName: "tiny", checkpoint: ckpt };
    await assert.rejects(
      resolveRunConfig({ ...model, editorConfig: "tiny" }),
      (e: Error) => {
        assert.match(e.message, /--editor-config shipped configs\/tiny\.json/);
        assert.ok(e.message.includes(`weights of checkpoint ${ckpt}`), e.message);
        assert.match(
          e.message,
          /retrieval_editor\.module_dim 32 \(trained with 16\), retrieval_editor\.eqe_n 4 \(trained with 2\)/,
        );
        return true;
      },
    );
    // a malformed stored config names the checkpoint and the field
    const broken = await checkpointWith(dir, "broken", tinyJson((c) => delete c.train_cfg.lr));
    await assert.rejects(
      resolveRunConfig({ ...model, checkpoint: broken }),
      new RegExp(
        `LiveEdit config stored in checkpoint .*broken\\.json: field train_cfg\\.lr is missing`,
      ),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("resolveRunConfig: a model directory's missing or malformed config.json is an error naming it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "liveedit-runcfg-" });
  try {
    const file = join(dir, "config.json");
    const model = { modelDir: dir, modelName: "tiny" };
    await assert.rejects(resolveRunConfig(model), (e: Error) => {
      assert.equal(e.message, `${file} does not exist`);
      return true;
    });
    await Deno.writeTextFile(file, '{"model_type": "llava",');
    await assert.rejects(resolveRunConfig(model), (e: Error) => {
      assert.ok(e.message.startsWith(`${file}: malformed JSON: `), e.message);
      return true;
    });
    await Deno.writeTextFile(file, '{"model_type": 3}');
    await assert.rejects(
      resolveRunConfig(model),
      new RegExp(`^Error: ${file}: model_type 3 has no LiveEdit config; pass --editor-config$`),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

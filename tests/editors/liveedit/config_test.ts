import assert from "node:assert/strict";
import * as path from "node:path";
import {
  configJson,
  isShippedConfig,
  loadConfig,
  lrSchedule,
  parseConfig,
  SHIPPED_CONFIGS,
} from "../../../src/editors/liveedit/config.ts";
import { BACKBONES } from "../../../src/models/backbones.ts";

Deno.test("the shipped configs carry the released values", async () => {
  const want: Record<string, number[]> = {
    blip2: [2560, 32],
    llava: [4096, 576],
    minigpt4: [4096, 32],
  };
  for (const { editorConfig: b } of BACKBONES) {
    const cfg = await loadConfig(b);
    assert.deepEqual([cfg.dims.llmMidDim, cfg.dims.visionTokN], want[b], b);
    assert.deepEqual(
      [
        cfg.dims.moduleDim,
        cfg.dims.crossAttHeadN,
        cfg.dims.loraRank,
        cfg.dims.loraScale,
        cfg.dims.eqeN,
      ],
      [1024, 8, 4, 5, 4],
    );
    assert.equal(cfg.editLayerI, 21);
    assert.equal(cfg.train.lr, 1e-4);
    assert.deepEqual(cfg.train.lrCutIt, [10000]);
    assert.equal(cfg.train.relLambda + cfg.train.hardRoutingLambda, 2);
  }
});

Deno.test("the shipped configs are the JSON files in configs/, and tiny is one of them", async () => {
  const dir = new URL("../../../src/editors/liveedit/configs/", import.meta.url);
  const files = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  assert.deepEqual(files, ["blip2.json", "llava.json", "minigpt4.json", "tiny.json"]);
  for (const file of files) {
    const name = file.replace(/\.json$/, "");
    assert.ok(isShippedConfig(name), name);
    const json = JSON.parse(await Deno.readTextFile(new URL(file, dir)));
    assert.deepEqual(SHIPPED_CONFIGS[name as keyof typeof SHIPPED_CONFIGS], json, file);
  }
  assert.ok(!isShippedConfig("toString") && !isShippedConfig("configs/tiny.json"));
  const cfg = await loadConfig("tiny");
  assert.deepEqual([cfg.dims.llmMidDim, cfg.editLayerI, cfg.dims.visionTokN], [64, 2, 8]);
  // the parsed config does not share arrays with the imported JSON
  (cfg.train.lrCutIt as number[]).push(99);
  assert.deepEqual((await loadConfig("tiny")).train.lrCutIt, [10000]);
});

Deno.test("lr schedule: 1e-4 for the first 10001 updates, then x0.1 (LambdaLR step > 10000)", async () => {
  const lr = lrSchedule((await loadConfig("llava")).train);
  assert.equal(lr(0), 1e-4);
  assert.equal(lr(10000), 1e-4);
  assert.ok(Math.abs(lr(10001) - 1e-5) < 1e-18);
});

Deno.test("config errors name the file and the field", async () => {
  const base = SHIPPED_CONFIGS.blip2;
  // deno-lint-ignore no-explicit-any
  const bad = (edit: (c: any) => void, re: RegExp) => {
    const c = structuredClone(base);
    edit(c);
    assert.throws(() => parseConfig(c, "my.json"), re);
  };
  bad(
    (c) => delete c.retrieval_editor.lora_rank,
    /my\.json: field retrieval_editor\.lora_rank is missing/,
  );
  bad(
    (c) => (c.llm_mid_dim = "2560"),
    /my\.json: field llm_mid_dim must be a positive integer, got "2560"/,
  );
  bad((c) => (c.train_cfg.lr = -1), /field train_cfg\.lr must be a number > 0/);
  bad(
    (c) => (c.train_cfg.lr_cut_it = [5, 3]),
    /field train_cfg\.lr_cut_it must be a strictly increasing/,
  );
  bad(
    (c) => (c.retrieval_editor.cross_att_head_n = 3),
    /module_dim \(1024\) must be divisible by retrieval_editor\.cross_att_head_n \(3\)/,
  );
  bad((c) => (c.retrieval_editor = [1]), /field retrieval_editor must be an object/);
  const dir = await Deno.makeTempDir();
  try {
    const file = path.join(dir, "broken.json");
    await Deno.writeTextFile(file, "{ not json");
    await assert.rejects(loadConfig(file), /LiveEdit config .*broken\.json: not valid JSON/);
    await assert.rejects(loadConfig(path.join(dir, "absent.json")), /absent\.json: cannot read/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("configJson writes the JSON layout that parseConfig reads back to an equal config", async () => {
  for (const name of Object.keys(SHIPPED_CONFIGS)) {
    const cfg = await loadConfig(name);
    const json = configJson(cfg);
    assert.ok(!("source" in json), "where it was read from is not a setting");
    const back = parseConfig(JSON.parse(JSON.stringify(json)), "stored");
    assert.deepEqual({ ...back, source: cfg.source }, cfg, name);
    assert.equal(back.source, "stored");
    // the shipped file's fields, plus train_cfg.edit_layer_twice (false when absent)
    const shipped = SHIPPED_CONFIGS[name as keyof typeof SHIPPED_CONFIGS] as Record<
      string,
      unknown
    >;
    const train = shipped.train_cfg as Record<string, unknown>;
    assert.deepEqual(json, { ...shipped, train_cfg: { ...train, edit_layer_twice: false } });
  }
});

Deno.test("train_cfg.edit_layer_twice: optional, false by default, a boolean", () => {
  const base = structuredClone(SHIPPED_CONFIGS.tiny) as { train_cfg: Record<string, unknown> };
  assert.equal(parseConfig(base, "a.json").train.editLayerTwice, false);
  base.train_cfg.edit_layer_twice = true;
  assert.equal(parseConfig(base, "a.json").train.editLayerTwice, true);
  base.train_cfg.edit_layer_twice = "yes";
  assert.throws(
    () => parseConfig(base, "a.json"),
    /a\.json: field train_cfg\.edit_layer_twice must be a boolean, got "yes"/,
  );
});

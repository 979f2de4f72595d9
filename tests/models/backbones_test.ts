import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { openModelDir } from "../../src/io/model_dir.ts";
import {
  backboneByName,
  backboneOf,
  BACKBONES,
  contextLengthOf,
  DECODERS,
  loadVllm,
} from "../../src/models/backbones.ts";
import { TINY_ARCHS } from "../../src/models/tiny/configs.ts";
import { writeTinyModel } from "../../src/models/tiny/write.ts";
import { withTempDir } from "../io/_helpers.ts";

Deno.test("the backbone table: one row per model_type, names resolve, configs are shipped", () => {
  const types = BACKBONES.map((b) => b.modelType);
  assert.deepEqual(types, ["blip-2", "llava", "minigpt4"]);
  const names = BACKBONES.flatMap((b) => [b.name, ...b.displayNames]);
  assert.equal(new Set(names).size, names.length, "names are unique");
  for (const b of BACKBONES) {
    assert.equal(backboneOf(b.modelType), b);
    assert.equal(backboneByName(b.name), b);
    for (const n of b.displayNames) assert.equal(backboneByName(n), b);
    assert.ok(Object.hasOwn(DECODERS, b.decoder), `${b.modelType}: decoder ${b.decoder}`);
    const config = new URL(
      `../../src/editors/liveedit/configs/${b.editorConfig}.json`,
      import.meta.url,
    );
    assert.ok(existsSync(config), `${b.modelType}: ${b.editorConfig}.json is shipped`);
  }
  assert.equal(backboneByName("blip2-opt-2.7b")?.editorConfig, "blip2");
  assert.equal(backboneByName("llava-v1.5-7b")?.modelType, "llava");
  assert.equal(backboneByName("minigpt-4-vicuna-7b")?.editorConfig, "minigpt4");
  assert.equal(backboneOf("opt"), undefined);
  assert.equal(backboneByName("gpt-j"), undefined);
});

Deno.test("each row loads its tiny model: wrapper, layer path and context length", async () => {
  await withTempDir(async (root) => {
    for (const arch of TINY_ARCHS) {
      const { dir } = await writeTinyModel(join(root, arch), { arch, layers: 3 });
      const vllm = await loadVllm(dir);
      try {
        const row = backboneOf(vllm.family)!;
        assert.ok(row, `${arch}: ${vllm.family} has a row`);
        assert.equal(vllm.config.modelType, row.decoder);
        assert.equal(contextLengthOf(vllm.dir), vllm.config.maxPositions);
        const keys = vllm.dir.checkpoint.listTensors();
        const layer = (i: number) => keys.some((k) => k.startsWith(`${row.layerPath}.${i}.`));
        assert.ok(layer(0) && layer(2) && !layer(3), `${arch}: layers at ${row.layerPath}`);
      } finally {
        vllm.close();
      }
    }
  });
});

Deno.test("loadVllm: a model_type without a row, or another language model, names config.json", async () => {
  await withTempDir(async (root) => {
    const { dir } = await writeTinyModel(join(root, "m"), { arch: "llava" });
    const file = join(dir, "config.json");
    const config = JSON.parse(await Deno.readTextFile(file));
    const write = (c: unknown) => Deno.writeTextFile(file, JSON.stringify(c));
    await write({ ...config, model_type: "qwen2_vl" });
    await assert.rejects(
      loadVllm(dir),
      (e: Error) =>
        e.message === `unsupported model_type 'qwen2_vl' in ${file}: a vision-language model ` +
            `is one of blip-2, llava, minigpt4`,
    );
    await write({ ...config, model_type: "opt" });
    await assert.rejects(loadVllm(dir), /'opt' .*\(a language model alone\)/);
    await write({ ...config, text_config: { ...config.text_config, model_type: "opt" } });
    await assert.rejects(loadVllm(dir), /config\.json.*text_config\.model_type/);
    await write({ ...config, text_config: { ...config.text_config, max_position_embeddings: 0 } });
    const md = await openModelDir(dir);
    try {
      assert.throws(() => contextLengthOf(md), /text_config\.max_position_embeddings/);
    } finally {
      md.close();
    }
  });
});

import assert from "node:assert/strict";
import { join } from "node:path";
import { openModelDir } from "../../src/io/model_dir.ts";
import { writeSafetensors } from "../../src/io/safetensors.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { writeOptTokenizer } from "../../src/models/tiny/tokenizer.ts";
import { writeBlipPreprocessor } from "../../src/models/tiny/preprocessor.ts";
import { withTempDir } from "./_helpers.ts";

async function writeModelDir(dir: string, config: unknown): Promise<void> {
  await Deno.writeTextFile(join(dir, "config.json"), JSON.stringify(config));
  await writeSafetensors(join(dir, "model.safetensors"), {
    "lm.w": new Tensor("f32", [2], new Float32Array([1, 2])),
  });
}

Deno.test("openModelDir reads config.json, model_type, text_config and opens the checkpoint", async () => {
  await withTempDir(async (dir) => {
    await writeModelDir(dir, { model_type: "blip-2", text_config: { model_type: "opt" } });
    const md = await openModelDir(dir);
    try {
      assert.equal(md.modelType, "blip-2");
      assert.equal(md.textModelType, "opt");
      assert.equal(md.configPath, join(dir, "config.json"));
      assert.deepEqual([...(await md.checkpoint.read("lm.w")).data], [1, 2]);
    } finally {
      md.close();
    }
  });
});

Deno.test("tokenizer and image processor load lazily, once, and retry after a failure", async () => {
  await withTempDir(async (dir) => {
    await writeModelDir(dir, { model_type: "opt" });
    const md = await openModelDir(dir); // no tokenizer files yet: opening still works
    try {
      await assert.rejects(md.tokenizer(), (e: Error) => e.message.includes(dir));
      await assert.rejects(md.imageProcessor(), /preprocessor_config\.json/);
      await writeOptTokenizer(dir, { vocabSize: 300 });
      await writeBlipPreprocessor(dir, { imageSize: 16 });
      const tok = await md.tokenizer();
      assert.equal(tok.encode("a cat")[0], 2);
      assert.equal(await md.tokenizer(), tok);
      assert.deepEqual((await md.imageProcessor()).outputSize, { height: 16, width: 16 });
    } finally {
      md.close();
    }
  });
});

Deno.test("bad config.json: missing, malformed, no model_type, wrong types name file and field", async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, "config.json");
    await assert.rejects(openModelDir(dir), (e: Error) => e.message === `${file} does not exist`);
    await Deno.writeTextFile(file, "{ nope");
    await assert.rejects(
      openModelDir(dir),
      (e: Error) => e.message.startsWith(`${file}: malformed JSON`),
    );
    await Deno.writeTextFile(file, "[]");
    await assert.rejects(
      openModelDir(dir),
      (e: Error) => e.message.startsWith(`${file}: must be a JSON object`),
    );
    await Deno.writeTextFile(file, JSON.stringify({ hidden_size: 8 }));
    await assert.rejects(
      openModelDir(dir),
      (e: Error) => e.message === `${file}: field 'model_type' is missing`,
    );
    await Deno.writeTextFile(file, JSON.stringify({ model_type: 7 }));
    await assert.rejects(
      openModelDir(dir),
      (e: Error) => e.message.startsWith(`${file}: field 'model_type' must be`),
    );
    await Deno.writeTextFile(file, JSON.stringify({ model_type: "llava", text_config: [] }));
    await assert.rejects(
      openModelDir(dir),
      (e: Error) => e.message.startsWith(`${file}: field 'text_config'`),
    );
    await Deno.writeTextFile(file, JSON.stringify({ model_type: "opt" }));
    await assert.rejects(
      openModelDir(dir),
      /neither model\.safetensors\.index\.json nor model\.safetensors/,
    );
  });
});

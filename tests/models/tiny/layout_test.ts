import assert from "node:assert/strict";
import { join } from "node:path";
import sharp from "sharp";
import { loadImageProcessor } from "../../../src/io/image.ts";
import { loadTokenizer } from "../../../src/io/tokenizer.ts";
import { TINY_ARCHS } from "../../../src/models/tiny/configs.ts";
import { TINY_FILES } from "../../../src/models/tiny/layout.ts";
import { writeTinyModel } from "../../../src/models/tiny/write.ts";
import { loadVllm } from "../../../src/models/vllm/mod.ts";
import { listDir, readJson, withTempDir } from "./_tiny.ts";

const TEXTS = ["What is in the Photo? A cat, 42 ☕.", "a photo of", " two  spaces", ""];

for (const arch of TINY_ARCHS) {
  Deno.test(`tiny ${arch}: the transformers 5 layout holds the v5 files and loads as the v4 one`, async () => {
    await withTempDir(async (parent) => {
      const v4 = join(parent, "v4"), v5 = join(parent, "v5");
      await writeTinyModel(v4, { arch, seed: 4 });
      const summary = await writeTinyModel(v5, { arch, seed: 4, layout: "v5" });
      assert.deepEqual(await listDir(v5), [...TINY_FILES.v5]);
      let bytes = 0;
      for (const f of TINY_FILES.v5) bytes += (await Deno.stat(join(v5, f))).size;
      assert.equal(summary.bytes, bytes);
      for (const f of ["config.json", "model.safetensors", "tokenizer.json"]) {
        assert.deepEqual(await Deno.readFile(join(v5, f)), await Deno.readFile(join(v4, f)), f);
      }

      // the files as transformers 5 writes them
      const processor = await readJson(join(v5, "processor_config.json"));
      const imageProcessor = processor.image_processor as Record<string, unknown>;
      assert.match(String(imageProcessor.image_processor_type), /^(Blip|CLIP)ImageProcessorFast$/);
      assert.equal(imageProcessor.device, null);
      assert.equal(
        processor.processor_class,
        arch === "llava" ? "LlavaProcessor" : "Blip2Processor",
      );
      const config = await readJson(join(v5, "config.json"));
      if (arch === "llava") assert.equal(processor.image_token, "<image>");
      else assert.equal(processor.num_query_tokens, config.num_query_tokens);
      const tokConfig = await readJson(join(v5, "tokenizer_config.json"));
      assert.equal(tokConfig.backend, "tokenizers");
      for (const absent of ["add_bos_token", "add_eos_token", "added_tokens_decoder"]) {
        assert.ok(!(absent in tokConfig), absent);
      }
      assert.ok(
        Object.values(tokConfig).every((v) =>
          typeof v !== "object" || v === null ||
          Object.keys(v).length === 0
        ),
        "special tokens are plain strings",
      );

      // the loaders see the same tokenizer and image processor
      const [t4, t5] = [await loadTokenizer(v4), await loadTokenizer(v5)];
      for (const key of ["vocabSize", "bos", "eos", "unk", "pad", "prefixIds", "suffixIds"]) {
        assert.deepEqual(t5[key as keyof typeof t5], t4[key as keyof typeof t4], key);
      }
      assert.deepEqual(t5.specialIds, t4.specialIds);
      assert.ok(
        t5.prefixIds.length === 1 && t5.prefixIds[0] === t5.bos?.id,
        "BOS from the template",
      );
      for (const text of TEXTS) {
        assert.deepEqual(t5.encode(text), t4.encode(text), text);
        const ids = t5.encode(text);
        assert.equal(
          t5.decode(ids, { skipSpecialTokens: true }),
          t4.decode(ids, { skipSpecialTokens: true }),
        );
      }
      const [p4, p5] = [await loadImageProcessor(v4), await loadImageProcessor(v5)];
      assert.equal(p5.config.type, `${p4.config.type}Fast`);
      assert.deepEqual({ ...p5.config, type: "" }, { ...p4.config, type: "" });

      // and the model prepares the same inputs
      const image = join(parent, "image.png");
      await sharp({ create: { width: 41, height: 30, channels: 3, background: "#2b6" } })
        .png().toFile(image);
      const example = { image, prompt: "what is in the image?", target: "a red chair" };
      const [m4, m5] = [await loadVllm(v4), await loadVllm(v5)];
      try {
        assert.deepEqual(await m5.prepare([example]), await m4.prepare([example]));
      } finally {
        m4.close();
        m5.close();
      }
    });
  });
}

Deno.test("tiny models: an unknown layout is an error naming the valid ones", async () => {
  await withTempDir(async (parent) => {
    await assert.rejects(
      // deno-lint-ignore no-explicit-any
      writeTinyModel(join(parent, "m"), { arch: "llava", layout: "v6" as any }),
      /layout must be one of v4, v5, got "v6"/,
    );
    assert.deepEqual(await listDir(parent), []);
  });
});

import assert from "node:assert/strict";
import { join } from "node:path";
import sharp from "sharp";
import { loadVllm, VllmRunner } from "../../../src/models/vllm/mod.ts";
import { TINY_ARCHS } from "../../../src/models/tiny/configs.ts";
import { writeTinyModel } from "../../../src/models/tiny/write.ts";
import { toNumbers } from "../../../src/tensor/elements.ts";
import { readJson, withTempDir } from "./_tiny.ts";

/** Image tokens each tiny model puts in the prompt: its query tokens, or LLaVA's patches. */
const IMAGE_TOKENS = { "blip2-opt": 8, llava: 16, minigpt4: 8 } as const;

for (const arch of TINY_ARCHS) {
  Deno.test(`tiny ${arch}: loadVllm takes the directory through the model registry; prepare and forward run`, async () => {
    await withTempDir(async (parent) => {
      const dir = join(parent, "model");
      await writeTinyModel(dir, { arch, seed: 9 });
      const image = join(parent, "image.png");
      await sharp({ create: { width: 50, height: 40, channels: 3, background: "#c52" } })
        .png().toFile(image);
      const vocab = ((await readJson(join(dir, "config.json"))).text_config as {
        vocab_size: number;
      }).vocab_size;

      const vllm = await loadVllm(dir);
      const runner = new VllmRunner(vllm, { cacheDir: join(parent, "cache") });
      try {
        const batch = await vllm.prepare([
          { image, prompt: "what is in the image?", target: "a red chair" },
          { image, prompt: "what color is the car?", target: "blue" },
        ]);
        for (const range of batch.vtRange) {
          assert.ok(range !== null);
          assert.equal(range[1] - range[0], IMAGE_TOKENS[arch]);
        }
        const out = await runner.forward(batch);
        assert.equal(out.layerOut.length, 4);
        assert.equal(out.logits.shape[2], vocab);
        assert.ok(toNumbers(out.logits).every(Number.isFinite));
      } finally {
        await runner.close();
        vllm.close();
      }
    });
  });
}

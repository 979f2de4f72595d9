import assert from "node:assert/strict";
import { join } from "node:path";
import { loadImageProcessor } from "../../src/io/image.ts";
import {
  CLIP_MEAN,
  CLIP_STD,
  writeBlipPreprocessor,
  writeClipPreprocessor,
} from "../../src/models/tiny/preprocessor.ts";

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "liveedit-tiny-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("writeClipPreprocessor: LLaVA's CLIPImageProcessor fields at a small size", async () => {
  await withTempDir(async (dir) => {
    await writeClipPreprocessor(dir, { imageSize: 32, cropSize: 28 });
    const json = JSON.parse(await Deno.readTextFile(join(dir, "preprocessor_config.json")));
    assert.equal(json.image_processor_type, "CLIPImageProcessor");
    assert.equal(json.processor_class, "LlavaProcessor");
    assert.deepEqual(json.size, { shortest_edge: 32 });
    const proc = await loadImageProcessor(dir);
    assert.deepEqual(proc.config.resize, { kind: "shortest_edge", shortestEdge: 32 });
    assert.deepEqual(proc.config.centerCrop, { height: 28, width: 28 });
    assert.equal(proc.config.resample, 3);
    assert.deepEqual(proc.config.normalize, { mean: CLIP_MEAN, std: CLIP_STD });
    assert.ok(Math.abs(proc.config.rescaleFactor! - 1 / 255) < 1e-15);
  });
});

Deno.test("writeBlipPreprocessor: BLIP-2's BlipImageProcessor, no crop; bad sizes rejected", async () => {
  await withTempDir(async (dir) => {
    await writeBlipPreprocessor(dir, { imageSize: 24 });
    const proc = await loadImageProcessor(dir);
    assert.equal(proc.config.type, "BlipImageProcessor");
    assert.deepEqual(proc.config.resize, { kind: "exact", height: 24, width: 24 });
    assert.equal(proc.config.centerCrop, undefined);
    assert.deepEqual(proc.outputSize, { height: 24, width: 24 });
    await assert.rejects(writeBlipPreprocessor(dir, { imageSize: 0 }), /imageSize/);
    await assert.rejects(writeClipPreprocessor(dir, { imageSize: 8, cropSize: 2.5 }), /cropSize/);
  });
});

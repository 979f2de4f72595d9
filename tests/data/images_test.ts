import assert from "node:assert/strict";
import { join } from "node:path";
import { loadDataset } from "../../src/data/datasets.ts";
import { ImageCache, imageCacheCapacity, type ImageSource } from "../../src/data/images.ts";
import type { Example } from "../../src/data/sample.ts";
import { loadImageProcessor } from "../../src/io/image.ts";
import { CLIP_MEAN, CLIP_STD, writeBlipPreprocessor } from "../../src/models/tiny/preprocessor.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { colourOf, rawRecord, withTempDir, writeTinyEvqa } from "./_helpers.ts";

/** The pixels of `example`'s image through `source`, null for a text-only example. */
function pixelsOf(example: Example, source: ImageSource): Promise<Tensor<"f32"> | null> {
  return example.image === null ? Promise.resolve(null) : source.loadImage(example.image);
}

/**
 * Asserts `t` is `[1, 3, side, side]` of the solid colour `rgb` normalized with the CLIP
 * mean/std, computed here in float64 (bound 1e-5: float32 storage of values below ~3).
 */
function assertSolid(t: Tensor | null, rgb: readonly number[], side: number, what: string) {
  assert.ok(t !== null, what);
  assert.deepEqual(t.shape, [1, 3, side, side], what);
  const data = t.data as Float32Array;
  for (let c = 0; c < 3; c++) {
    const want = (rgb[c] / 255 - CLIP_MEAN[c]) / CLIP_STD[c];
    for (let i = 0; i < side * side; i++) {
      const got = data[c * side * side + i];
      assert.ok(
        Math.abs(got - want) <= 1e-5,
        `${what}: channel ${c} pixel ${i}: ${got} vs ${want}`,
      );
    }
  }
}

Deno.test("lazy loading: each example's tensor is its own image, preprocessed", async () => {
  await withTempDir(async (dir) => {
    await writeTinyEvqa(dir, [rawRecord(0), rawRecord(1), rawRecord(2)]);
    const data = await loadDataset("EVQA", "train", { dataRoot: dir });
    const model = join(dir, "model");
    await Deno.mkdir(model);
    await writeBlipPreprocessor(model, { imageSize: 8 });
    const processor = await loadImageProcessor(model);
    const cache = new ImageCache(processor, 16);
    assert.equal(cache.misses, 0, "nothing decoded by loadDataset");
    for (const sample of data.samples) {
      const i = sample.index;
      const { request, generality: g, locality: l } = sample;
      const px = await pixelsOf(request, cache);
      assertSolid(px, colourOf(i, 0), 8, `record ${i} request`);
      assertSolid(await pixelsOf(g.text_rephrase, cache), colourOf(i, 0), 8, `${i} text_rephrase`);
      assertSolid(
        await pixelsOf(g.image_rephrase, cache),
        colourOf(i, 1),
        8,
        `${i} image_rephrase`,
      );
      assert.equal(await pixelsOf(l.text_loc, cache), null);
      assertSolid(await pixelsOf(l.image_loc, cache), colourOf(0, 2), 8, `record ${i} image_loc`);
      assert.equal(sample.portability, undefined);
      // the same tensor as the processor gives directly
      assert.deepEqual(px, await processor.loadImage(request.image!));
    }
    // per record: image, image_rephrase decoded; the shared m_loc and the repeated request
    // image (text_rephrase) come from the cache
    assert.equal(cache.misses, 3 * 2 + 1);
    assert.equal(cache.hits, 3 * 4 - cache.misses);
    assert.equal(cache.size, 7);
    // straight through the processor, no cache
    const direct = await pixelsOf(data.samples[1].generality.image_rephrase, processor);
    assertSolid(direct, colourOf(1, 1), 8, "direct");
  });
});

Deno.test("lazy loading: portability examples use the request image", async () => {
  await withTempDir(async (dir) => {
    const images = await writeTinyEvqa(dir, [rawRecord(0)]);
    const file = join(dir, "VLKEB/eval_edit_onehop.json");
    await Deno.mkdir(join(dir, "VLKEB"));
    const port = { port_q: "q", port_a: "a", port_edit_q: "eq", port_edit_a: "ea" };
    await Deno.writeTextFile(file, JSON.stringify([{ ...rawRecord(0), port_new: [port, port] }]));
    const data = await loadDataset("VLKEB", "eval_onehop", { dataRoot: dir, imageRoot: images });
    const model = join(dir, "model");
    await Deno.mkdir(model);
    await writeBlipPreprocessor(model, { imageSize: 4 });
    const processor = await loadImageProcessor(model);
    const { portability } = data.samples[0];
    assert.equal(portability?.length, 2);
    for (const p of portability!) {
      assertSolid(await pixelsOf(p, processor), colourOf(0, 0), 4, "portability");
    }
  });
});

Deno.test("a missing image at load time is the processor's error naming the file", async () => {
  await withTempDir(async (dir) => {
    const images = await writeTinyEvqa(dir, [rawRecord(0)], ["val2014/img0.png"]);
    const data = await loadDataset("EVQA", "train", { dataRoot: dir, checkImages: false });
    const model = join(dir, "model");
    await Deno.mkdir(model);
    await writeBlipPreprocessor(model, { imageSize: 4 });
    const cache = new ImageCache(await loadImageProcessor(model));
    const path = join(images, "val2014/img0.png");
    const { request, generality, locality } = data.samples[0];
    const loads = [request, generality.image_rephrase, locality.image_loc].map((e) =>
      pixelsOf(e, cache)
    );
    await assert.rejects(loads[0], new RegExp(`${path}`));
    await Promise.all(loads.slice(1));
    assert.equal(cache.size, 2, "the failed load is not cached (image_rephrase, m_loc are)");
  });
});

/** A fake source counting decodes, returning a 1-pixel tensor whose value is the call number. */
function countingSource(): ImageSource & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    loadImage(path: string) {
      calls.push(path);
      return Promise.resolve(
        new Tensor("f32", [1, 3, 1, 1], new Float32Array(3).fill(calls.length)),
      );
    },
  };
}

Deno.test("ImageCache: least recently used eviction at capacity", async () => {
  const src = countingSource();
  const cache = new ImageCache(src, 2);
  await cache.loadImage("a");
  await cache.loadImage("b");
  await cache.loadImage("a"); // a is now the most recent
  await cache.loadImage("c"); // evicts b
  assert.equal(cache.size, 2);
  assert.equal((await cache.loadImage("a")).data[0], 1, "a kept");
  assert.equal((await cache.loadImage("b")).data[0], 4, "b decoded again");
  assert.deepEqual(src.calls, ["a", "b", "c", "b"]);
  assert.equal(cache.hits, 2);
  assert.equal(cache.misses, 4);
  cache.clear();
  assert.equal(cache.size, 0);
});

Deno.test("ImageCache: concurrent requests share one decode; failures are not cached", async () => {
  const src = countingSource();
  const cache = new ImageCache(src);
  const [x, y] = await Promise.all([cache.loadImage("p"), cache.loadImage("p")]);
  assert.equal(x, y);
  assert.deepEqual(src.calls, ["p"]);
  let fail = true;
  const flaky = new ImageCache({
    loadImage: () =>
      fail
        ? Promise.reject(new Error("image file q does not exist"))
        : Promise.resolve(new Tensor("f32", [1, 3, 1, 1], new Float32Array(3))),
  });
  await assert.rejects(flaky.loadImage("q"), /image file q does not exist/);
  await Promise.resolve();
  assert.equal(flaky.size, 0);
  fail = false;
  assert.deepEqual((await flaky.loadImage("q")).shape, [1, 3, 1, 1]);
  assert.throws(() => new ImageCache(src, 0), /capacity must be an integer >= 1, got 0/);
});

Deno.test("imageCacheCapacity: 256 MiB of f32 pixels, at least 64 images", () => {
  assert.equal(imageCacheCapacity(224), Math.floor(2 ** 28 / (3 * 224 * 224 * 4)));
  assert.equal(imageCacheCapacity(224), 445);
  assert.equal(imageCacheCapacity(32), 21845);
  assert.equal(imageCacheCapacity(4096), 64, "never below 64");
  assert.equal(imageCacheCapacity(2, 3 * 2 * 2 * 4 * 100), 100);
  assert.throws(() => imageCacheCapacity(0), /image size must be an integer >= 1, got 0/);
});

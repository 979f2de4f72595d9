import assert from "node:assert/strict";
import sharp from "sharp";
import { join } from "node:path";
import { ImageProcessor, parseImageProcessorConfig } from "../../src/io/image.ts";
import {
  checkHeader,
  confineImagesTo,
  DEFAULT_IMAGE_LIMITS,
  detectImageType,
  ImageError,
  imageLimits,
  probeImage,
  readImageFile,
  setImageLimits,
} from "../../src/io/image_file.ts";
import { withTempDir } from "./_helpers.ts";

async function png(width: number, height: number): Promise<Uint8Array> {
  const raw = new Uint8Array(width * height * 3).fill(90);
  return new Uint8Array(await sharp(raw, { raw: { width, height, channels: 3 } }).png().toBuffer());
}

/** CRC-32 (the PNG chunk checksum), bit by bit. */
function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return (c ^ 0xffffffff) >>> 0;
}

const processor = () =>
  new ImageProcessor(parseImageProcessorConfig({
    image_processor_type: "BlipImageProcessor",
    size: { height: 8, width: 8 },
    image_mean: [0.5, 0.5, 0.5],
    image_std: [0.5, 0.5, 0.5],
  }, "preprocessor_config.json"));

/** A 122-byte SVG asking to be rendered at 30000 × 30000. */
const BIG_SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="30000" height="30000">' +
  '<rect width="100%" height="100%" fill="red"/></svg>';

function rejectsNaming(path: string, pattern: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof ImageError, String(e));
    assert.equal(e.file, path);
    assert.ok(e.message.startsWith(`image ${path}: `), e.message);
    assert.match(e.message, pattern);
    return true;
  };
}

Deno.test("the type comes from the content: a PNG named .jpg decodes, an SVG named .png does not", async () => {
  await withTempDir(async (dir) => {
    const asJpg = join(dir, "a.jpg");
    await Deno.writeFile(asJpg, await png(12, 10));
    assert.deepEqual(await probeImage(asJpg), { type: "png", width: 12, height: 10 });
    assert.deepEqual((await processor().loadImage(asJpg)).shape, [1, 3, 8, 8]);

    const svg = join(dir, "evil.png");
    await Deno.writeTextFile(svg, BIG_SVG);
    await assert.rejects(
      processor().loadImage(svg),
      rejectsNaming(svg, /is an image of type svg .*allowed: png, jpeg, webp \(SVG only when/),
    );
    const gif = join(dir, "g.png");
    await Deno.writeFile(gif, new TextEncoder().encode("GIF89a\x01\x00\x01\x00"));
    await assert.rejects(probeImage(gif), rejectsNaming(gif, /first bytes 47 49 46 38 39 61/));
    const empty = join(dir, "empty.jpg");
    await Deno.writeFile(empty, new Uint8Array());
    await assert.rejects(probeImage(empty), rejectsNaming(empty, /first bytes none \(empty/));
    assert.equal(
      detectImageType(new TextEncoder().encode("\uFEFF<?xml version='1.0'?>\n<svg>")),
      "svg",
    );
    assert.equal(detectImageType(new TextEncoder().encode("<html><svg>")), undefined);
  });
});

Deno.test("SVG only when asked, and then within the pixel limit", async () => {
  await withTempDir(async (dir) => {
    const big = join(dir, "big.svg"), small = join(dir, "small.svg");
    await Deno.writeTextFile(big, BIG_SVG);
    await Deno.writeTextFile(small, BIG_SVG.replaceAll("30000", "16"));
    const withSvg = {
      ...DEFAULT_IMAGE_LIMITS,
      types: [...DEFAULT_IMAGE_LIMITS.types, "svg"] as const,
    };
    await assert.rejects(
      probeImage(big, withSvg),
      rejectsNaming(big, /is 30000x30000 = 900000000 pixels, over the limit of 50000000/),
    );
    assert.deepEqual(await probeImage(small, withSvg), { type: "svg", width: 16, height: 16 });
    const before = imageLimits();
    try {
      setImageLimits({ types: ["png", "svg"] });
      assert.deepEqual((await processor().loadImage(small)).shape, [1, 3, 8, 8]);
      await assert.rejects(processor().loadImage(big), /over the limit/);
    } finally {
      setImageLimits(before);
    }
    assert.throws(() => setImageLimits({ types: ["gif" as "png"] }), /unknown image type "gif"/);
    assert.throws(() => setImageLimits({ maxPixels: 0 }), /pixel limit must be an integer >= 1/);
  });
});

Deno.test("the pixel limit is read from the header, before any decoding", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "a.png");
    await Deno.writeFile(path, await png(100, 60));
    await assert.rejects(
      probeImage(path, { ...DEFAULT_IMAGE_LIMITS, maxPixels: 5999 }),
      rejectsNaming(path, /is 100x60 = 6000 pixels, over the limit of 5999/),
    );
    assert.equal((await probeImage(path, { ...DEFAULT_IMAGE_LIMITS, maxPixels: 6000 })).width, 100);
    // A 1-pixel PNG whose header (with a correct CRC) claims 100000 x 100000.
    const head = await png(1, 1);
    new DataView(head.buffer).setUint32(16, 100_000);
    new DataView(head.buffer).setUint32(20, 100_000);
    new DataView(head.buffer).setUint32(29, crc32(head.subarray(12, 29)));
    await assert.rejects(
      checkHeader("liar.png", head),
      rejectsNaming("liar.png", /is 100000x100000 = 10000000000 pixels, over the limit/),
    );
    // In memory as on disk, with the process's limit.
    const before = imageLimits();
    try {
      setImageLimits({ maxPixels: 5999 });
      await assert.rejects(
        processor().process(await png(100, 60), "mem.png"),
        rejectsNaming("mem.png", /over the limit of 5999/),
      );
    } finally {
      setImageLimits(before);
    }
  });
});

Deno.test("files under an image root are read without following links out of it, at read time", async () => {
  if (Deno.build.os === "windows") return;
  await withTempDir(async (dir) => {
    const root = join(dir, "images"), outside = join(dir, "secret.png");
    await Deno.mkdir(join(root, "sub"), { recursive: true });
    await Deno.writeFile(outside, await png(4, 4));
    await Deno.writeFile(join(root, "sub", "ok.png"), await png(4, 4));
    await Deno.symlink(join(root, "sub", "ok.png"), join(root, "inside-link.png"));
    await Deno.symlink(outside, join(root, "out-link.png"));
    // Not yet a root: the link is followed like any path.
    assert.equal((await readImageFile(join(root, "out-link.png"))).width, 4);
    confineImagesTo(root);
    assert.equal((await readImageFile(join(root, "inside-link.png"))).width, 4);
    await assert.rejects(
      readImageFile(join(root, "out-link.png")),
      rejectsNaming(join(root, "out-link.png"), /leads outside the image root .*secret\.png/),
    );
    // A file checked at load time and swapped for a link before it is read is caught too.
    const swapped = join(root, "sub", "swapped.png");
    await Deno.writeFile(swapped, await png(4, 4));
    assert.equal((await probeImage(swapped)).width, 4);
    await Deno.remove(swapped);
    await Deno.symlink(outside, swapped);
    await assert.rejects(processor().loadImage(swapped), /leads outside the image root/);
    // A linked directory that leads outside is caught as well.
    await Deno.symlink(dir, join(root, "up"));
    await assert.rejects(readImageFile(join(root, "up", "secret.png")), /leads outside/);
  });
});

Deno.test("a directory or a FIFO is refused without waiting on it", async () => {
  if (Deno.build.os !== "linux") return;
  await withTempDir(async (dir) => {
    const fifo = join(dir, "pipe.png");
    const made = await new Deno.Command("mkfifo", { args: [fifo] }).output();
    assert.equal(made.code, 0);
    await assert.rejects(probeImage(fifo), rejectsNaming(fifo, /is not a regular file/));
    await assert.rejects(readImageFile(dir), rejectsNaming(dir, /is not a regular file/));
  });
});

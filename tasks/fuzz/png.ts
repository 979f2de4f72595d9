/**
 * Fuzzing the image reader: small valid PNGs (RGB, RGBA, grey, palette), damaged at the byte
 * level or in their structure (the IHDR size, with or without a fixed CRC; chunk lengths; the
 * signature replaced by another format's, an SVG among them), are checked with
 * {@linkcode probeImage} and decoded and preprocessed with an {@linkcode ImageProcessor}.
 *
 * Each must either fail with an `ImageError` naming the file, or give `pixel_values` of the
 * processor's size with finite values, from an image within the pixel limit.
 *
 * @module
 */
import sharp from "sharp";
import { join } from "node:path";
import { ImageProcessor, parseImageProcessorConfig } from "../../src/io/image.ts";
import { ImageError, imageLimits, probeImage } from "../../src/io/image_file.ts";
import type { Rng } from "../../src/tensor/rng.ts";
import { mutateBytes, type Mutated } from "./mutate.ts";
import type { FuzzFormat, Outcome } from "./types.ts";

interface Context {
  readonly dir: string;
  readonly seeds: readonly Uint8Array[];
  readonly processor: ImageProcessor;
}

/** CRC-32 of the PNG chunks. */
function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return (c ^ 0xffffffff) >>> 0;
}

const MAGICS: readonly [string, Uint8Array][] = [
  ["gif", new TextEncoder().encode("GIF89a")],
  ["jpeg", new Uint8Array([0xff, 0xd8, 0xff, 0xe0])],
  ["webp", new TextEncoder().encode("RIFF\x10\x00\x00\x00WEBPVP8 ")],
  ["svg", new TextEncoder().encode('<svg width="40000" height="40000">')],
  ["tiff", new Uint8Array([0x49, 0x49, 0x2a, 0x00])],
];

/** A structural change of a PNG. */
function mutatePng(png: Uint8Array, rng: Rng): Mutated {
  const out = png.slice();
  const view = new DataView(out.buffer);
  const sizes = [0, 1, 7, 4000, 7071, 7072, 30000, 2 ** 31 - 1, 2 ** 32 - 1];
  const changes: [string, () => Uint8Array][] = [
    ["IHDR size", () => {
      view.setUint32(16, sizes[rng.int(sizes.length)]);
      view.setUint32(20, sizes[rng.int(sizes.length)]);
      if (rng.int(2)) view.setUint32(29, crc32(out.subarray(12, 29)));
      return out;
    }],
    ["IHDR depth/colour", () => {
      out[24] = [1, 2, 4, 8, 16, 3][rng.int(6)];
      out[25] = [0, 2, 3, 4, 6, 5][rng.int(6)];
      if (rng.int(2)) view.setUint32(29, crc32(out.subarray(12, 29)));
      return out;
    }],
    ["chunk length", () => {
      view.setUint32(33, [0, 1, 2 ** 31 - 1, 2 ** 32 - 1, rng.int(1000)][rng.int(5)]);
      return out;
    }],
    ["magic", () => {
      const [, magic] = MAGICS[rng.int(MAGICS.length)];
      const swapped = new Uint8Array(magic.length + out.length - 8);
      swapped.set(magic);
      swapped.set(out.subarray(8), magic.length);
      return swapped;
    }],
  ];
  const [what, change] = changes[rng.int(changes.length)];
  return { bytes: change(), what };
}

/** The PNG format of the fuzzer. */
export const PNG_FORMAT: FuzzFormat<Context> = {
  name: "png",
  async setup(dir) {
    const raw = (w: number, h: number, c: 1 | 3 | 4) =>
      sharp(Uint8Array.from({ length: w * h * c }, (_, i) => (i * 37) % 256), {
        raw: { width: w, height: h, channels: c },
      });
    const seeds = await Promise.all([
      raw(16, 12, 3).png().toBuffer(),
      raw(9, 7, 4).png().toBuffer(),
      raw(5, 5, 1).png().toBuffer(),
      raw(12, 8, 3).png({ palette: true }).toBuffer(),
    ]);
    const processor = new ImageProcessor(parseImageProcessorConfig({
      image_processor_type: "BlipImageProcessor",
      size: { height: 8, width: 8 },
      image_mean: [0.5, 0.5, 0.5],
      image_std: [0.5, 0.5, 0.5],
    }, "fuzz/preprocessor_config.json"));
    return { dir, seeds: seeds.map((s) => new Uint8Array(s)), processor };
  },
  async run(ctx, rng, index): Promise<Outcome> {
    const seed = ctx.seeds[rng.int(ctx.seeds.length)];
    const roll = rng.uniform();
    const { bytes, what } = roll < 0.1
      ? { bytes: seed, what: "unchanged" }
      : roll < 0.45
      ? mutatePng(seed, rng)
      : mutateBytes(seed, rng);
    const path = join(ctx.dir, `case-${index}.png`);
    await Deno.writeFile(path, bytes);
    try {
      let header, pixels;
      try {
        header = await probeImage(path);
        pixels = await ctx.processor.loadImage(path);
      } catch (error) {
        if (!(error instanceof ImageError) || error.file !== path) {
          return { kind: "escaped", what, detail: String(error) };
        }
        return what === "unchanged"
          ? { kind: "rejected-valid", what, detail: error.message }
          : { kind: "rejected", what };
      }
      if (header.width * header.height > imageLimits().maxPixels) {
        return { kind: "accepted-invalid", what, detail: "over the pixel limit" };
      }
      if (pixels.shape.join() !== "1,3,8,8" || !pixels.data.every(Number.isFinite)) {
        return { kind: "accepted-invalid", what, detail: `pixel values ${pixels.shape}` };
      }
      return { kind: "accepted", what };
    } finally {
      await Deno.remove(path);
    }
  },
};

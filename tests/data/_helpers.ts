/**
 * Shared helpers for the data tests: temporary directories and a small generated data set in
 * the original JSON + image layout, with solid-colour images written by sharp.
 *
 * @module
 */
import sharp from "sharp";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * Excerpts of the real annotation files, committed: the first {@linkcode EXCERPT_RECORDS}
 * records of each, in the data root layout (read-only; no images).
 */
export const EXCERPT_DATA_ROOT = fileURLToPath(new URL("../fixtures/data", import.meta.url));

/** Records in each excerpt. */
export const EXCERPT_RECORDS = 30;

/** The project's `data/` directory, where a user puts the complete annotation files. */
export const FULL_DATA_ROOT = fileURLToPath(new URL("../../data", import.meta.url));

/** Whether `data/` holds the complete annotation file `rel` (else its tests are ignored). */
export function hasFullData(rel: string): boolean {
  return existsSync(join(FULL_DATA_ROOT, rel));
}

/** Runs `fn` with a fresh temporary directory, removed afterwards. */
export async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "liveedit-data-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Writes a `width × height` PNG of one RGB colour at `path` (creating its directory). */
export async function writeSolidPng(
  path: string,
  rgb: readonly [number, number, number],
  width = 20,
  height = 16,
): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  const px = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) px.set(rgb, i * 3);
  await sharp(px, { raw: { width, height, channels: 3 } }).png().toFile(path);
}

/** One raw E-VQA-style record whose images are `img<i>.png`, `reph<i>.png` and `loc.png`. */
export function rawRecord(i: number): Record<string, string> {
  return {
    src: `What is shown in picture ${i}?`,
    rephrase: `What does picture ${i} show?`,
    pred: "nothing",
    alt: `thing ${i}`,
    image: `val2014/img${i}.png`,
    image_rephrase: `val2014_image_rephrase/reph${i}.png`,
    loc: `nq question: question ${i}`,
    loc_ans: `answer ${i}`,
    m_loc: "val2014/loc.png",
    m_loc_q: "What sport is this?",
    m_loc_a: "tennis",
  };
}

/** The colour of the generated image for record `i` (`kind` 0 image, 1 rephrase, 2 loc). */
export function colourOf(i: number, kind: 0 | 1 | 2): [number, number, number] {
  return kind === 2 ? [10, 200, 30] : [(40 * i + 7) % 256, kind === 0 ? 60 : 180, 255 - i];
}

/**
 * Writes `records` as `<root>/easy-edit-mm/vqa/vqa_train.json` and the images of records
 * `0..records.length-1` under `<root>/easy-edit-mm/images`, except those in `omit` (relative
 * image paths). Returns the image root.
 */
export async function writeTinyEvqa(
  root: string,
  records: readonly unknown[],
  omit: readonly string[] = [],
): Promise<string> {
  const file = join(root, "easy-edit-mm/vqa/vqa_train.json");
  await Deno.mkdir(dirname(file), { recursive: true });
  await Deno.writeTextFile(file, JSON.stringify(records, null, 1));
  const images = join(root, "easy-edit-mm/images");
  const write = async (rel: string, rgb: [number, number, number]) => {
    if (!omit.includes(rel)) await writeSolidPng(join(images, rel), rgb);
  };
  await write("val2014/loc.png", colourOf(0, 2));
  for (let i = 0; i < records.length; i++) {
    await write(`val2014/img${i}.png`, colourOf(i, 0));
    await write(`val2014_image_rephrase/reph${i}.png`, colourOf(i, 1));
  }
  return images;
}

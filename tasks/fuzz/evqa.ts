/**
 * Fuzzing the E-VQA loader: a small annotation file of valid records, damaged as text (bytes
 * flipped, inserted, cut) or as JSON (fields dropped, emptied, given other types, image paths
 * that escape the root, lead through a link out of it, name a directory, an SVG, a text file
 * or nothing), is loaded with {@linkcode loadDataset}, half the time with `skipBadRecords`.
 *
 * It must either fail with a `DataError` naming the annotation file, or give samples that keep
 * the promises: every prompt and target has text, every image is an existing file inside the
 * image root, and the records left are exactly those not reported as skipped.
 *
 * @module
 */
import sharp from "sharp";
import { dirname, join, relative } from "node:path";
import { loadDataset } from "../../src/data/datasets.ts";
import { DataError } from "../../src/data/errors.ts";
import { sampleExamples } from "../../src/data/examples.ts";
import type { Rng } from "../../src/tensor/rng.ts";
import { mutateBytes } from "./mutate.ts";
import type { FuzzFormat, Outcome } from "./types.ts";

/** The data root of a run, and the paths its records may use. */
interface Context {
  readonly dataRoot: string;
  readonly file: string;
  readonly images: string;
}

const GOOD_IMAGES = ["val2014/a.png", "val2014/b.png", "val2014/c.png", "loc/l.png"];
const BAD_IMAGES = [
  "../outside.png",
  "/etc/passwd",
  "",
  "missing.png",
  "link-out.png",
  "dir.png",
  "svg.png",
  "text.png",
  "a\u0000b.png",
  "C:\\x.png",
];
const BAD_VALUES: readonly unknown[] = ["", "   ", null, 7, [], {}, true, "x".repeat(3000)];

function record(rng: Rng, i: number): Record<string, unknown> {
  const pick = () => GOOD_IMAGES[rng.int(GOOD_IMAGES.length)];
  return {
    src: `What is in picture ${i}?`,
    rephrase: `What does picture ${i} show?`,
    alt: `thing ${i}`,
    image: pick(),
    image_rephrase: pick(),
    loc: `nq question: question ${i}`,
    loc_ans: `answer ${i}`,
    m_loc: pick(),
    m_loc_q: "What sport is this?",
    m_loc_a: "tennis",
  };
}

/** A JSON-level change of `records`, described. */
function mutateRecords(records: unknown[], rng: Rng): string {
  const i = rng.int(records.length);
  const replace = () => (records[i] = BAD_VALUES[rng.int(BAD_VALUES.length)]);
  const rec = records[i];
  if (typeof rec !== "object" || rec === null || Array.isArray(rec)) {
    replace();
    return `record ${i}: replaced`;
  }
  const r = rec as Record<string, unknown>;
  const fields = Object.keys(r);
  if (fields.length === 0) {
    replace();
    return `record ${i}: replaced`;
  }
  const field = fields[rng.int(fields.length)];
  const changes: [string, () => void][] = [
    ["drop", () => delete r[field]],
    ["value", () => (r[field] = BAD_VALUES[rng.int(BAD_VALUES.length)])],
    ["image", () => (r[field] = BAD_IMAGES[rng.int(BAD_IMAGES.length)])],
    ["record", replace],
    ["port_new", () => (r.port_new = [BAD_VALUES[rng.int(BAD_VALUES.length)]])],
  ];
  const [what, change] = changes[rng.int(changes.length)];
  change();
  return `record ${i}: ${what} ${field}`;
}

/** Checks an accepted data set against its promises; the broken one, or undefined. */
async function broken(
  data: Awaited<ReturnType<typeof loadDataset>>,
  total: number,
  images: string,
): Promise<string | undefined> {
  const kept = new Set(data.samples.map((s) => s.index));
  const skipped = new Set(data.skippedRecords.map((s) => s.index));
  if (kept.size + skipped.size !== total) return `${kept.size} kept + ${skipped.size} skipped`;
  for (const sample of data.samples) {
    for (const { example, promptField } of sampleExamples(sample)) {
      if (example.prompt.trim() === "" || example.target.trim() === "") {
        return `record ${sample.index}: ${promptField} has an empty prompt or target`;
      }
      if (example.image === null) continue;
      const rel = relative(images, example.image);
      if (rel.startsWith("..")) return `record ${sample.index}: ${example.image} escapes`;
      const real = await Deno.realPath(example.image).catch(() => "");
      if (!real.startsWith(await Deno.realPath(images)) || !(await Deno.stat(real)).isFile) {
        return `record ${sample.index}: ${example.image} is not a file inside the root`;
      }
    }
  }
  return undefined;
}

/** The E-VQA format of the fuzzer. */
export const EVQA_FORMAT: FuzzFormat<Context> = {
  name: "evqa",
  async setup(dir) {
    const dataRoot = join(dir, "data");
    const images = join(dataRoot, "easy-edit-mm/images");
    const file = join(dataRoot, "easy-edit-mm/vqa/vqa_train.json");
    await Deno.mkdir(dirname(file), { recursive: true });
    for (const [k, rel] of GOOD_IMAGES.entries()) {
      await Deno.mkdir(dirname(join(images, rel)), { recursive: true });
      const raw = new Uint8Array(6 * 5 * 3).fill(40 * k);
      await sharp(raw, { raw: { width: 6, height: 5, channels: 3 } }).png()
        .toFile(join(images, rel));
    }
    await Deno.copyFile(join(images, GOOD_IMAGES[0]), join(dataRoot, "outside.png"));
    await Deno.symlink(join(dataRoot, "outside.png"), join(images, "link-out.png"));
    await Deno.mkdir(join(images, "dir.png"));
    await Deno.writeTextFile(join(images, "svg.png"), '<svg width="9000" height="9000"/>');
    await Deno.writeTextFile(join(images, "text.png"), "not an image");
    return { dataRoot, file, images };
  },
  async run(ctx, rng): Promise<Outcome> {
    const records: unknown[] = Array.from({ length: 3 }, (_, i) => record(rng, i));
    const roll = rng.uniform();
    let text: Uint8Array, what: string;
    if (roll < 0.1) {
      text = new TextEncoder().encode(JSON.stringify(records));
      what = "unchanged";
    } else if (roll < 0.6) {
      what = mutateRecords(records, rng);
      if (rng.uniform() < 0.3) what += "; " + mutateRecords(records, rng);
      text = new TextEncoder().encode(JSON.stringify(records));
    } else {
      ({ bytes: text, what } = mutateBytes(new TextEncoder().encode(JSON.stringify(records)), rng));
    }
    const skipBadRecords = rng.uniform() < 0.5;
    if (skipBadRecords) what += " (skipBadRecords)";
    await Deno.writeFile(ctx.file, text);
    let data;
    try {
      data = await loadDataset("EVQA", "train", { dataRoot: ctx.dataRoot, skipBadRecords });
    } catch (error) {
      if (!(error instanceof DataError) || error.file !== ctx.file) {
        return { kind: "escaped", what, detail: String(error) };
      }
      return what.startsWith("unchanged")
        ? { kind: "rejected-valid", what, detail: error.message }
        : { kind: "rejected", what };
    }
    let total = 0;
    try {
      const parsed = JSON.parse(new TextDecoder().decode(text));
      total = Array.isArray(parsed) ? parsed.length : -1;
    } catch {
      total = -1;
    }
    const bad = total < 0 ? "an invalid file was accepted" : await broken(data, total, ctx.images);
    return bad === undefined
      ? { kind: "accepted", what }
      : { kind: "accepted-invalid", what, detail: bad };
  },
};

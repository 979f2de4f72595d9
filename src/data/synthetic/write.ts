/**
 * Writing the synthetic benchmark as a data root that `loadDataset("EVQA", ...)` reads like the
 * real one: `easy-edit-mm/vqa/vqa_train.json` and `vqa_eval.json` (records in the E-VQA
 * layout, see `generate.ts`), the PNG images under `easy-edit-mm/images/synthetic/` (drawn
 * from SVG with sharp), and `synthetic.json` with the settings that made them. The directory
 * is built aside and renamed into place.
 *
 * @module
 */
import { dirname, join, resolve } from "node:path";
import sharp from "sharp";
import { writeJsonAtomic } from "../../io/atomic.ts";
import { beginDir, directoryState } from "../../io/atomic_dir.ts";
import { Rng } from "../../tensor/rng.ts";
import { DATASETS } from "../datasets.ts";
import { type SyntheticImage, syntheticSplit } from "./generate.ts";

/** The settings of a synthetic benchmark. */
export interface SyntheticOptions {
  /** Training records (default 1000). */
  readonly nTrain?: number;
  /** Evaluation records (default 100). */
  readonly nEval?: number;
  /** Seed of everything (default 0). */
  readonly seed?: number;
  /** Side of the images in pixels (default 32). */
  readonly imageSize?: number;
}

/** The file recording the settings of a written benchmark, at the data root. */
export const SYNTHETIC_MANIFEST = "synthetic.json";

/** Version of the generator, recorded in {@linkcode SYNTHETIC_MANIFEST}; bumped on changes. */
export const SYNTHETIC_VERSION = 1;

/** The settings with defaults filled in, as {@linkcode SYNTHETIC_MANIFEST} records them. */
export interface SyntheticManifest {
  /** {@linkcode SYNTHETIC_VERSION}. */
  readonly version: number;
  /** Training records. */
  readonly nTrain: number;
  /** Evaluation records. */
  readonly nEval: number;
  /** The seed. */
  readonly seed: number;
  /** Image side. */
  readonly imageSize: number;
}

/** `options` with defaults; throws naming the option that is not a positive integer. */
export function syntheticManifest(options: SyntheticOptions = {}): SyntheticManifest {
  const m = {
    version: SYNTHETIC_VERSION,
    nTrain: options.nTrain ?? 1000,
    nEval: options.nEval ?? 100,
    seed: options.seed ?? 0,
    imageSize: options.imageSize ?? 32,
  };
  for (const [k, v] of Object.entries(m)) {
    if (!Number.isSafeInteger(v) || v < (k === "seed" ? 0 : 1)) {
      throw new Error(
        `synthetic data: ${k} must be an integer >= ${k === "seed" ? 0 : 1}, got ${v}`,
      );
    }
  }
  return m;
}

/** What {@linkcode writeSynthetic} wrote. */
export interface SyntheticSummary extends SyntheticManifest {
  /** The data root (absolute). */
  readonly dir: string;
  /** Number of images. */
  readonly images: number;
}

/** How many images are rendered at once. */
const RENDER_BATCH = 64;

/**
 * Writes the synthetic benchmark of `options` into data root `out` (see the module docs);
 * `force` replaces a non-empty `out`. `onProgress` is called with images done and total.
 *
 * @example
 * ```ts ignore
 * await writeSynthetic("demo/data", { nTrain: 200, nEval: 20, seed: 1 });
 * const { samples } = await loadDataset("EVQA", "eval", { dataRoot: "demo/data" });
 * ```
 */
export async function writeSynthetic(
  out: string,
  options: SyntheticOptions & {
    readonly force?: boolean;
    readonly onProgress?: (done: number, total: number) => void;
  } = {},
): Promise<SyntheticSummary> {
  const manifest = syntheticManifest(options);
  const dir = resolve(out);
  const root = new Rng(manifest.seed);
  const splits = {
    train: syntheticSplit("train", manifest.nTrain, root.fork(), manifest.imageSize),
    eval: syntheticSplit("eval", manifest.nEval, root.fork(), manifest.imageSize),
  };
  const images = [...splits.train.images, ...splits.eval.images];
  const state = await directoryState(dir, "make-synthetic");
  if (state === "full" && !options.force) {
    throw new Error(`make-synthetic: ${dir} is not empty (pass --force to replace it)`);
  }
  const pending = await beginDir(dir, { replace: true });
  try {
    const layout = DATASETS.EVQA;
    await renderAll(join(pending.tmp, layout.imageDir), images, options.onProgress);
    for (const split of ["train", "eval"] as const) {
      const file = join(pending.tmp, layout.files[split]!);
      await Deno.mkdir(dirname(file), { recursive: true });
      await writeJsonAtomic(file, splits[split].records);
    }
    await writeJsonAtomic(join(pending.tmp, SYNTHETIC_MANIFEST), manifest);
    if (state === "empty") await Deno.remove(dir);
    await pending.commit();
  } catch (error) {
    await pending.abort();
    throw error;
  }
  return { ...manifest, dir, images: images.length };
}

/** Renders every image as an RGB PNG under `root`. */
async function renderAll(
  root: string,
  images: readonly SyntheticImage[],
  onProgress?: (done: number, total: number) => void,
): Promise<void> {
  const dirs = new Set(images.map((i) => dirname(join(root, i.path))));
  for (const d of dirs) await Deno.mkdir(d, { recursive: true });
  const encoder = new TextEncoder();
  for (let start = 0; start < images.length; start += RENDER_BATCH) {
    const batch = images.slice(start, start + RENDER_BATCH);
    await Promise.all(batch.map(async (image) => {
      const path = join(root, image.path);
      try {
        await sharp(encoder.encode(image.svg)).removeAlpha().png().toFile(path);
      } catch (error) {
        throw new Error(`make-synthetic: cannot draw ${path}: ${(error as Error).message}`, {
          cause: error,
        });
      }
    }));
    onProgress?.(start + batch.length, images.length);
  }
}

/**
 * The manifest of the benchmark written at `dir`, or null when there is none (or it is not
 * readable JSON): a caller compares it with {@linkcode syntheticManifest} to reuse the data.
 */
export async function readSyntheticManifest(dir: string): Promise<SyntheticManifest | null> {
  try {
    return JSON.parse(await Deno.readTextFile(join(dir, SYNTHETIC_MANIFEST)));
  } catch {
    return null;
  }
}

/**
 * Loading E-VQA, E-IC and VLKEB (spec §5) from their annotation files, in the original
 * repository's layout under a data root (default `data`):
 *
 * - `EVQA`: `easy-edit-mm/vqa/vqa_train.json` (train), `easy-edit-mm/vqa/vqa_eval.json` (eval);
 *   images under `easy-edit-mm/images`.
 * - `EIC`: `easy-edit-mm/caption/caption_train_edit.json` (train),
 *   `easy-edit-mm/caption/caption_eval_edit.json` (eval); images under `easy-edit-mm/images`.
 * - `VLKEB`: `VLKEB/train.json` (train), `VLKEB/eval.json` (eval), `VLKEB/eval_edit_onehop.json`
 *   (eval_onehop, with the portability field `port_new`); images under `VLKEB/mmkb_images`.
 *
 * Records become {@linkcode EditSample}s whose image fields are paths; the pixels are read
 * lazily (see `images.ts`). `limit` keeps the first N records, as the original `-dn`.
 *
 * @module
 */
import { join } from "node:path";
import { findMissingImages, type ImageRef } from "./image_paths.ts";
import { PROMPT_RULES } from "./prompts.ts";
import { type EditSample, parseRecord } from "./sample.ts";

/** The data set names, as the original `-dna` takes them. */
export const DATA_NAMES = ["EVQA", "EIC", "VLKEB"] as const;
/** One of {@linkcode DATA_NAMES}. */
export type DataName = typeof DATA_NAMES[number];

/** The splits: training, evaluation, and VLKEB's one-hop portability evaluation. */
export const SPLITS = ["train", "eval", "eval_onehop"] as const;
/** One of {@linkcode SPLITS}. */
export type Split = typeof SPLITS[number];

/** Where a data set's files live, relative to the data root. */
export interface DatasetLayout {
  /** The annotation file of each split the data set has. */
  readonly files: Readonly<Partial<Record<Split, string>>>;
  /** The default image root. */
  readonly imageDir: string;
}

/** The layout of each data set (the original repository's `data/` tree). */
export const DATASETS: Readonly<Record<DataName, DatasetLayout>> = {
  EVQA: {
    files: { train: "easy-edit-mm/vqa/vqa_train.json", eval: "easy-edit-mm/vqa/vqa_eval.json" },
    imageDir: "easy-edit-mm/images",
  },
  EIC: {
    files: {
      train: "easy-edit-mm/caption/caption_train_edit.json",
      eval: "easy-edit-mm/caption/caption_eval_edit.json",
    },
    imageDir: "easy-edit-mm/images",
  },
  VLKEB: {
    files: {
      train: "VLKEB/train.json",
      eval: "VLKEB/eval.json",
      eval_onehop: "VLKEB/eval_edit_onehop.json",
    },
    imageDir: "VLKEB/mmkb_images",
  },
};

/** Options of {@linkcode loadDataset}. */
export interface LoadDatasetOptions {
  /** The directory holding `easy-edit-mm/` and `VLKEB/` (default `data`). */
  readonly dataRoot?: string;
  /** The image root (default `<dataRoot>/easy-edit-mm/images`, `<dataRoot>/VLKEB/mmkb_images`). */
  readonly imageRoot?: string;
  /** Keep only the first `limit` records of the file (`--data-n`); default all. */
  readonly limit?: number;
  /** Skip the records with a missing image instead of failing (default false). */
  readonly skipMissingImages?: boolean;
  /**
   * Check that every referenced image exists as a file inside the image root (default true).
   * With false only the paths are checked (no `..`, not absolute), not the files.
   */
  readonly checkImages?: boolean;
}

/** A loaded split. */
export interface LoadedDataset {
  /** The data set. */
  readonly name: DataName;
  /** The split. */
  readonly split: Split;
  /** The annotation file read. */
  readonly file: string;
  /** The image root the paths were resolved under. */
  readonly imageRoot: string;
  /** The samples, in file order. */
  readonly samples: readonly EditSample[];
  /** How many records were skipped for missing images (with `skipMissingImages`). */
  readonly skipped: number;
  /** Human-readable notes, e.g. what was skipped and why. */
  readonly warnings: readonly string[];
}

/** How many missing paths an error or warning lists. */
const SHOW_MISSING = 5;

/**
 * Loads split `split` of data set `name`. Throws for an unknown name or split (listing the
 * valid ones), a missing or malformed annotation file (naming it), a malformed record (file,
 * record index and field), an image path escaping the image root (record and field), and, unless
 * `skipMissingImages`, missing images (how many, and the first few paths).
 *
 * @example
 * ```ts ignore
 * import { loadDataset } from "./datasets.ts";
 * const { samples } = await loadDataset("EVQA", "train", { limit: 100 });
 * console.log(samples[0].request.prompt); // "How many skyscrapers are there? The answer is:"
 * ```
 */
export async function loadDataset(
  name: string,
  split: string,
  options: LoadDatasetOptions = {},
): Promise<LoadedDataset> {
  if (!(DATA_NAMES as readonly string[]).includes(name)) {
    throw new Error(
      `unknown data name ${JSON.stringify(name)} (valid: ${DATA_NAMES.join(", ")})`,
    );
  }
  const dataName = name as DataName;
  const layout = DATASETS[dataName];
  const rel = layout.files[split as Split];
  if (!(SPLITS as readonly string[]).includes(split) || rel === undefined) {
    throw new Error(
      `data set ${name} has no split ${JSON.stringify(split)} (valid: ${
        Object.keys(layout.files).join(", ")
      })`,
    );
  }
  const { limit, skipMissingImages = false, checkImages = true } = options;
  if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 1)) {
    throw new Error(`data limit must be an integer >= 1, got ${limit}`);
  }
  const dataRoot = options.dataRoot ?? "data";
  const file = join(dataRoot, rel);
  const imageRoot = options.imageRoot ?? join(dataRoot, layout.imageDir);
  const records = await readJsonArray(file, `${name} ${split}`);
  const n = Math.min(records.length, limit ?? records.length);
  const samples: EditSample[] = [];
  const refs: ImageRef[] = [];
  for (let index = 0; index < n; index++) {
    const parsed = parseRecord(records[index], {
      file,
      index,
      rules: PROMPT_RULES[dataName],
      imageRoot,
      portability: split === "eval_onehop" ? "required" : "optional",
    });
    samples.push(parsed.sample);
    refs.push(...parsed.images);
  }
  const result = { name: dataName, split: split as Split, file, imageRoot };
  if (!checkImages) return { ...result, samples, skipped: 0, warnings: [] };

  const { missing, checked } = await findMissingImages(refs, imageRoot, file);
  if (missing.length === 0) return { ...result, samples, skipped: 0, warnings: [] };
  const missingPaths = new Set(missing.map((m) => m.path));
  const bad = new Set(refs.filter((r) => missingPaths.has(r.path)).map((r) => r.index));
  const list = missing.slice(0, SHOW_MISSING)
    .map((m) => `${m.path} (record ${m.index}, field '${m.field}')`).join(", ");
  const more = missing.length > SHOW_MISSING ? `, ... (${missing.length - SHOW_MISSING} more)` : "";
  const summary = `${missing.length} of ${checked} image files referenced by ${file} are ` +
    `missing under ${imageRoot}, affecting ${bad.size} of ${n} records; first: ${list}${more}`;
  if (!skipMissingImages) {
    throw new Error(`${summary}; set skipMissingImages to skip those records`);
  }
  if (bad.size === n) throw new Error(`${summary}; no record is left after skipping them`);
  return {
    ...result,
    samples: samples.filter((s) => !bad.has(s.index)),
    skipped: bad.size,
    warnings: [`skipped ${bad.size} of ${n} records: ${summary}`],
  };
}

/** Reads `path` as a JSON array; `what` names the data set and split in errors. */
async function readJsonArray(path: string, what: string): Promise<unknown[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new Error(`data file ${path} (${what}) does not exist`);
    }
    throw new Error(`data file ${path} (${what}): cannot read it: ${String(error)}`, {
      cause: error,
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`data file ${path}: malformed JSON: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (!Array.isArray(json)) throw new Error(`data file ${path}: must be a JSON array of records`);
  return json;
}

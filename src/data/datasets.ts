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
 * Everything is checked before any work starts: every record's fields (an empty prompt, target
 * or answer is an error) and every referenced image (it exists inside the image root and its
 * header is that of an allowed image within the pixel limit: `src/io/image_file.ts`). Errors
 * are {@linkcode DataError}s naming the file, the record index and the field;
 * `skipBadRecords` leaves such records out instead and reports how many and which.
 *
 * @module
 */
import { join } from "node:path";
import { DataError } from "./errors.ts";
import { checkImageFiles, type ImageRef } from "./image_paths.ts";
import { PROMPT_RULES } from "./prompts.ts";
import { type EditSample, parseRecord } from "./sample.ts";
import { dropRecords, skippedOf, type SkippedRecord } from "./skipped.ts";

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
   * Skip every record that fails a check (a malformed or empty field, an image that is missing,
   * outside the image root, of another type, over the pixel limit or with a bad header) instead
   * of failing (default false).
   */
  readonly skipBadRecords?: boolean;
  /**
   * Check every referenced image file (default true): it exists inside the image root, and its
   * header is an allowed image's within the pixel limit. With false only the paths are checked
   * (no `..`, not absolute), not the files.
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
  /** How many records were skipped (`skipMissingImages`, `skipBadRecords`). */
  readonly skipped: number;
  /** The records skipped, and why, in file order. */
  readonly skippedRecords: readonly SkippedRecord[];
  /** Human-readable notes, e.g. what was skipped and why. */
  readonly warnings: readonly string[];
}

/** How many missing paths an error or warning lists. */
const SHOW_MISSING = 5;

/**
 * The data set `name` names, in any case (`evqa` is `EVQA`); throws listing the valid names
 * for another.
 */
export function dataNameOf(name: string): DataName {
  const upper = name.toUpperCase();
  if (!(DATA_NAMES as readonly string[]).includes(upper)) {
    throw new Error(`unknown data name ${JSON.stringify(name)} (valid: ${DATA_NAMES.join(", ")})`);
  }
  return upper as DataName;
}

/**
 * Loads split `split` of data set `name`. Throws for an unknown name or split (listing the
 * valid ones), a missing or malformed annotation file (naming it), and, unless
 * `skipBadRecords`, a malformed record or one with an empty field (file, record index and
 * field), an image path escaping the image root or an image that fails its check (record and
 * field), and (unless `skipMissingImages` too) missing images (how many, and the first few).
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
  const dataName = dataNameOf(name);
  const layout = DATASETS[dataName];
  const rel = layout.files[split as Split];
  if (!(SPLITS as readonly string[]).includes(split) || rel === undefined) {
    throw new Error(
      `data set ${dataName} has no split ${JSON.stringify(split)} (valid: ${
        Object.keys(layout.files).join(", ")
      })`,
    );
  }
  const { limit, skipMissingImages = false, skipBadRecords = false, checkImages = true } = options;
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
  const bad: SkippedRecord[] = [];
  for (let index = 0; index < n; index++) {
    let parsed;
    try {
      parsed = parseRecord(records[index], {
        file,
        index,
        rules: PROMPT_RULES[dataName],
        imageRoot,
        portability: split === "eval_onehop" ? "required" : "optional",
      });
    } catch (error) {
      if (!skipBadRecords || !(error instanceof DataError)) throw error;
      bad.push(skippedOf(error));
      continue;
    }
    samples.push(parsed.sample);
    refs.push(...parsed.images);
  }
  let kept = dropRecords(file, n, samples, [], bad);
  const warnings = kept.warning === undefined ? [] : [kept.warning];
  if (checkImages) {
    const { problems, checked } = await checkImageFiles(refs, imageRoot, file);
    const broken = problems.find((p) => !p.missing);
    if (broken !== undefined && !skipBadRecords) throw broken.error;
    const missing = problems.filter((p) => p.missing);
    if (missing.length > 0 && !skipMissingImages && !skipBadRecords) {
      throw missingImagesError(file, imageRoot, n, refs, missing.map((p) => p.ref), checked);
    }
    const failed = new Map(problems.map((p) => [p.ref.path, p]));
    const drop = refs.flatMap((r) => {
      const p = failed.get(r.path);
      return p === undefined ? [] : [{ index: r.index, reason: skippedOf(p.error).reason }];
    });
    kept = dropRecords(file, n, kept.samples, kept.skipped, drop);
    if (kept.warning !== undefined) warnings.push(kept.warning);
  }
  return {
    name: dataName,
    split: split as Split,
    file,
    imageRoot,
    samples: kept.samples,
    skipped: kept.skipped.length,
    skippedRecords: kept.skipped,
    warnings,
  };
}

/** The error for missing images: how many, how many records, and the first few. */
function missingImagesError(
  file: string,
  imageRoot: string,
  n: number,
  refs: readonly ImageRef[],
  missing: readonly ImageRef[],
  checked: number,
): DataError {
  const paths = new Set(missing.map((m) => m.path));
  const affected = new Set(refs.filter((r) => paths.has(r.path)).map((r) => r.index));
  const list = missing.slice(0, SHOW_MISSING)
    .map((m) => `${m.path} (record ${m.index}, field '${m.field}')`).join(", ");
  const more = missing.length > SHOW_MISSING ? `, ... (${missing.length - SHOW_MISSING} more)` : "";
  return new DataError(
    file,
    {},
    `${missing.length} of ${checked} image files referenced by it are missing under ${imageRoot}, ` +
      `affecting ${affected.size} of ${n} records; first: ${list}${more}; set ` +
      "skipMissingImages (--skip-missing-images) or skipBadRecords (--skip-bad-records) to " +
      "skip those records",
  );
}

/** Reads `path` as a JSON array; `what` names the data set and split in errors. */
async function readJsonArray(path: string, what: string): Promise<unknown[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new DataError(path, {}, `does not exist (${what})`);
    }
    throw new DataError(path, {}, `cannot read it (${what}): ${String(error)}`, { cause: error });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new DataError(path, {}, `malformed JSON: ${(error as Error).message}`, { cause: error });
  }
  if (!Array.isArray(json)) throw new DataError(path, {}, "must be a JSON array of records");
  return json;
}

/**
 * The checks the tasks run on their inputs before any work: the image limits from the flags
 * (`--max-image-pixels`, `--allow-svg`; see `src/io/image_file.ts`), and every example fitted
 * to the backbone's context (`--truncate-prompt`, `--skip-bad-records`; see
 * `src/models/context.ts`). The data set's own checks (fields, images) run when it is
 * loaded (`loadDataset` with `skipBadRecords`).
 *
 * @module
 */
import { type DataName, loadDataset, type LoadedDataset, type Split } from "../data/datasets.ts";
import type { Example } from "../data/sample.ts";
import { dropRecords, skippedOf } from "../data/skipped.ts";
import { DEFAULT_IMAGE_LIMITS, type ImageType, setImageLimits } from "../io/image_file.ts";
import { ContextBudget, fitSamples } from "../models/context.ts";
import { loadVllm } from "../models/vllm/mod.ts";
import type { ResolvedModel } from "./config.ts";

/** Sets the process's image limits from `--max-image-pixels` and `--allow-svg` (`IMAGE_FLAGS`). */
export function applyImageFlags(flags: { maxImagePixels: number; allowSvg?: boolean }): void {
  const svg: ImageType[] = flags.allowSvg ? ["svg"] : [];
  setImageLimits({
    maxPixels: flags.maxImagePixels,
    types: [...DEFAULT_IMAGE_LIMITS.types, ...svg],
  });
}

/** Loads `model`'s backbone (config, tokenizer, weight headers: nothing runs) for `use`. */
async function withBudget<T>(
  model: ResolvedModel,
  use: (budget: ContextBudget) => T | Promise<T>,
): Promise<T> {
  const vllm = await loadVllm(model.dir);
  try {
    return await use(new ContextBudget(vllm, await vllm.tokenizer(), model.name));
  } finally {
    vllm.close();
  }
}

/** Options of {@linkcode fitDataset}. */
export interface FitDatasetOptions {
  /** Cut prompts from the left to fit. */
  readonly truncate: boolean;
  /** Leave out the records that do not fit (otherwise the first is an error). */
  readonly skip: boolean;
  /** Gets a note when prompts were cut. */
  readonly print: (line: string) => void;
}

/**
 * `data` with every example fitted to `model`'s context, before any work: throws the
 * `DataError` of the first record that does not fit (file, record, field and token counts),
 * or, with `skip`, leaves such records out, adding a warning to `warnings`. Prints how many
 * prompts were cut.
 */
export async function fitDataset(
  data: LoadedDataset,
  model: ResolvedModel,
  options: FitDatasetOptions,
): Promise<LoadedDataset> {
  const fitted = await withBudget(
    model,
    (budget) => fitSamples(budget, data.samples, data.file, options.truncate),
  );
  if (fitted.problems.length > 0 && !options.skip) throw fitted.problems[0];
  if (fitted.cutPrompts > 0) {
    options.print(
      `note: cut ${fitted.cutPrompts} prompts of ${fitted.cutRecords} records from the left to ` +
        `fit the context of ${model.name} (--truncate-prompt)`,
    );
  }
  const total = data.samples.length + data.skipped;
  const kept = dropRecords(
    data.file,
    total,
    fitted.samples,
    data.skippedRecords,
    fitted.problems.map(skippedOf),
  );
  return {
    ...data,
    samples: kept.samples,
    skipped: kept.skipped.length,
    skippedRecords: kept.skipped,
    warnings: kept.warning === undefined ? data.warnings : [...data.warnings, kept.warning],
  };
}

/** What {@linkcode loadTaskData} reads of a task's flags (`DATASET_FLAGS`). */
export interface DatasetFlags {
  /** `--skip-missing-images`. */
  readonly skipMissingImages?: boolean;
  /** `--skip-bad-records`. */
  readonly skipBadRecords?: boolean;
  /** `--truncate-prompt`. */
  readonly truncatePrompt?: boolean;
}

/** Where {@linkcode loadTaskData} loads from and for which backbone. */
export interface TaskDataOptions {
  /** The data root. */
  readonly dataRoot: string;
  /** The backbone the examples must fit. */
  readonly model: ResolvedModel;
  /** Keep only the first `limit` records. */
  readonly limit?: number;
  /** Gets the notes and warnings (`note: ...`, `warning: ...`). */
  readonly print: (line: string) => void;
}

/**
 * Split `split` of data set `name` as a task uses it: loaded with its checks (`loadDataset`,
 * `--skip-missing-images`, `--skip-bad-records`), fitted to the backbone's context
 * ({@linkcode fitDataset}, `--truncate-prompt`), its warnings printed.
 */
export async function loadTaskData(
  name: DataName,
  split: Split,
  options: TaskDataOptions,
  flags: DatasetFlags,
): Promise<LoadedDataset> {
  const loaded = await loadDataset(name, split, {
    dataRoot: options.dataRoot,
    limit: options.limit,
    skipMissingImages: flags.skipMissingImages,
    skipBadRecords: flags.skipBadRecords,
  });
  const data = await fitDataset(loaded, options.model, {
    truncate: flags.truncatePrompt ?? false,
    skip: flags.skipBadRecords ?? false,
    print: options.print,
  });
  for (const w of data.warnings) options.print(`warning: ${w}`);
  return data;
}

/**
 * `example` fitted to `model`'s context when generating `maxNewTokens` after its prompt (see
 * `ContextBudget.fit`); throws an error giving the token counts when it does not fit. Prints a
 * note when the prompt was cut.
 */
export async function fitPrompt(
  model: ResolvedModel,
  example: Example,
  maxNewTokens: number,
  truncate: boolean,
  print: (line: string) => void,
): Promise<Example> {
  return await withBudget(model, (budget) => {
    let fitted;
    try {
      fitted = budget.fit(example, { maxNewTokens, truncate });
    } catch (error) {
      const hint = truncate ? "" : " (--truncate-prompt cuts the prompt from the left)";
      throw new Error(
        `--prompt is too long: ${(error as Error).message}; lower --max-new-tokens${hint}`,
        { cause: error },
      );
    }
    if (fitted.cut > 0) {
      print(
        `note: cut the first ${fitted.cut} characters of the prompt to fit the context of ` +
          `${model.name} (--truncate-prompt)`,
      );
    }
    return fitted.example;
  });
}

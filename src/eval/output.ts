/**
 * The result directory of an evaluation, `eval_results/<editor>/<model>/<EVAL_NAME>/
 * sequential_edit_<N>/`, written all at once: the files go into a hidden temporary directory
 * next to it, which is renamed into place when everything is written, so the directory is
 * either absent (or the old one) or complete ({@linkcode writeResultFiles} writes its files). An
 * existing directory is refused unless
 * `force`, which replaces it (the old one is moved aside first and removed once the new one is
 * in place; see `src/io/atomic_dir.ts`, which also cleans up after killed evaluations).
 *
 * @module
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic, writeJsonAtomic } from "../io/atomic.ts";
import { beginDir, type PendingDir } from "../io/atomic_dir.ts";
import { metricsSvg } from "./metrics_svg.ts";
import {
  type MeanResultsFile,
  meanResultsFile,
  roundFloats,
  type SampleResult,
} from "./results.ts";

export type { PendingDir } from "../io/atomic_dir.ts";

/** The result directory of `editor` on `model` for evaluation `evalName` with `-sen n`. */
export function resultDir(
  root: string,
  editor: string,
  model: string,
  evalName: string,
  n: number,
): string {
  return join(root, editor, model, evalName, `sequential_edit_${n}`);
}

/** Throws when `dir` exists and `force` is not set (nothing is touched). */
export function checkResultDir(dir: string, force: boolean): void {
  if (existsSync(dir) && !force) {
    throw new Error(`${dir} exists: it has been evaluated (pass --force to replace it)`);
  }
}

/**
 * Starts writing `dir` (see the module documentation); `warn` gets a line for each leftover of
 * a killed evaluation that is cleaned up on the way.
 */
export async function beginResultDir(
  dir: string,
  force: boolean,
  warn?: (line: string) => void,
): Promise<PendingDir> {
  checkResultDir(dir, force);
  const pending = await beginDir(dir, { replace: force, warn });
  return {
    tmp: pending.tmp,
    async commit() {
      checkResultDir(dir, force);
      await pending.commit();
    },
    abort: () => pending.abort(),
  };
}

/** What {@linkcode writeResultFiles} needs of `config.json` to title the chart. */
export interface ResultConfig {
  /** The editor (`-en`). */
  readonly editor_name: string;
  /** The backbone's name. */
  readonly model_name: string;
  /** The evaluation's name (`<DATA>-<enp>`). */
  readonly evaluation_name: string;
  /** Edits per chunk (`-sen`). */
  readonly sequential_edit_n: number;
  /** Anything else `config.json` records. */
  readonly [key: string]: unknown;
}

/**
 * Writes the result files of the chunked results `chunks` into the directory `dir`:
 * `results.json` and `mean_results.json` (floats rounded to 4 decimals once, as the original's
 * `save_results`), `metrics.svg` (the means) and `config.json` (`config`), each atomically.
 * Returns the means (unrounded).
 */
export async function writeResultFiles(
  dir: string,
  chunks: readonly (readonly SampleResult[])[],
  config: ResultConfig,
): Promise<MeanResultsFile> {
  const means = meanResultsFile(chunks);
  const n = config.sequential_edit_n;
  await writeJsonAtomic(join(dir, "results.json"), roundFloats(chunks));
  await writeJsonAtomic(join(dir, "mean_results.json"), roundFloats(means));
  await writeFileAtomic(
    join(dir, "metrics.svg"),
    metricsSvg(means.total_mean, {
      title: `${config.editor_name} on ${config.model_name}, ${config.evaluation_name}: ` +
        `${n} edit${n > 1 ? "s" : ""} at a time`,
    }),
  );
  await writeJsonAtomic(join(dir, "config.json"), config);
  return means;
}

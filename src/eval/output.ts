/**
 * The result directory of an evaluation, `eval_results/<editor>/<model>/<EVAL_NAME>/
 * sequential_edit_<N>/`, written all at once: the files go into a hidden temporary directory
 * next to it, which is renamed into place when everything is written, so the directory is
 * either absent (or the old one) or complete. An existing directory is refused unless
 * `force`, which replaces it (the old one is moved aside first and removed once the new one is
 * in place; see `src/io/atomic_dir.ts`, which also cleans up after killed evaluations).
 *
 * @module
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { beginDir, type PendingDir } from "../io/atomic_dir.ts";

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

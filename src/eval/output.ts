/**
 * The result directory of an evaluation, `eval_results/<editor>/<model>/<EVAL_NAME>/
 * sequential_edit_<N>/`, written all at once: the files go into a hidden temporary directory
 * next to it, which is renamed into place when everything is written, so the directory is
 * either absent (or the old one) or complete. An existing directory is refused unless
 * `force`, which replaces it (the old one is moved aside first and removed once the new one is
 * in place).
 *
 * @module
 */
import { existsSync } from "node:fs";
import { basename, dirname, join } from "node:path";

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

/** A result directory being written. */
export interface PendingDir {
  /** Where the files go until {@linkcode PendingDir.commit}. */
  readonly tmp: string;
  /** Renames the files into place (replacing an old directory when forced). */
  commit(): Promise<void>;
  /** Removes the temporary directory. */
  abort(): Promise<void>;
}

/** Starts writing `dir` (see the module documentation). */
export async function beginResultDir(dir: string, force: boolean): Promise<PendingDir> {
  checkResultDir(dir, force);
  const parent = dirname(dir);
  await Deno.mkdir(parent, { recursive: true });
  const tmp = await Deno.makeTempDir({ dir: parent, prefix: `.${basename(dir)}.tmp-` });
  await Deno.chmod(tmp, 0o755).catch(() => {}); // makeTempDir makes it private
  return {
    tmp,
    async commit() {
      checkResultDir(dir, force);
      const old = `${tmp}.old`;
      const replacing = existsSync(dir);
      if (replacing) await Deno.rename(dir, old);
      try {
        await Deno.rename(tmp, dir);
      } catch (error) {
        if (replacing) await Deno.rename(old, dir);
        throw error;
      }
      if (replacing) await Deno.remove(old, { recursive: true });
    },
    async abort() {
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
    },
  };
}

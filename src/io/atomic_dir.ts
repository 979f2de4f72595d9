/**
 * Directories written all at once: the files go into a hidden temporary directory next to the
 * target, which is renamed into place when everything is written, so the target is either
 * absent (or the old one) or complete. Replacing an existing target moves it aside first
 * (`<temporary>.old`) and removes it once the new one is in place.
 *
 * A killed writer leaves its temporary directory, and possibly the `.old` one; the next writer
 * of the same target removes them ({@linkcode removeDirLeftovers}) when their owner is gone
 * (see `leftovers.ts`). If the kill came between the two renames of a replacement, the target
 * is missing and its `.old` copy is the complete previous directory: that one is renamed back.
 *
 * @example
 * ```ts
 * import { beginDir } from "./atomic_dir.ts";
 * const parent = await Deno.makeTempDir();
 * const pending = await beginDir(`${parent}/out`);
 * await Deno.writeTextFile(`${pending.tmp}/a.txt`, "a");
 * await pending.commit();
 * if (await Deno.readTextFile(`${parent}/out/a.txt`) !== "a") throw new Error("committed");
 * await Deno.remove(parent, { recursive: true });
 * ```
 *
 * @module
 */
import { existsSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { isTempDirName, ownerGone, removeLeftovers, tempDirPrefix } from "./leftovers.ts";

/** A directory being written. */
export interface PendingDir {
  /** Where the files go until {@linkcode PendingDir.commit}. */
  readonly tmp: string;
  /**
   * Renames the files into place. An existing target is replaced when the directory was begun
   * with `replace`; otherwise it is an error naming the target, and nothing moves.
   */
  commit(): Promise<void>;
  /** Removes the temporary directory. */
  abort(): Promise<void>;
}

/**
 * Whether `path` is absent, an empty directory or a directory with entries; throws naming it
 * (prefixed with `what`) when it is a file.
 */
export async function directoryState(
  path: string,
  what: string,
): Promise<"absent" | "empty" | "full"> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return "absent";
    throw e;
  }
  if (!info.isDirectory) throw new Error(`${what}: ${path} exists and is not a directory`);
  for await (const _ of Deno.readDir(path)) return "full";
  return "empty";
}

/** Options of {@linkcode beginDir}. */
export interface BeginDirOptions {
  /** Replace an existing target on commit (default false: committing onto one fails). */
  readonly replace?: boolean;
  /** Gets a line for each leftover of a killed writer cleaned up on the way. */
  readonly warn?: (line: string) => void;
}

/**
 * Starts writing directory `dir` (see the module documentation): creates its parent and a
 * temporary directory there (mode 0755), after cleaning up after killed writers
 * ({@linkcode removeDirLeftovers}).
 */
export async function beginDir(dir: string, options: BeginDirOptions = {}): Promise<PendingDir> {
  const { replace = false, warn = () => {} } = options;
  const parent = dirname(dir);
  await Deno.mkdir(parent, { recursive: true });
  for (const line of await removeDirLeftovers(dir)) warn(line);
  const tmp = await Deno.makeTempDir({ dir: parent, prefix: tempDirPrefix(basename(dir)) });
  await Deno.chmod(tmp, 0o755).catch(() => {}); // makeTempDir makes it private
  return {
    tmp,
    async commit() {
      const replacing = existsSync(dir);
      if (replacing && !replace) throw new Error(`${dir} exists: it is not replaced`);
      const old = `${tmp}.old`;
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

/**
 * Cleans up after killed writers of directory `dir`: when `dir` is missing and a dead writer's
 * `.old` copy of it is there, renames that back; then removes every temporary directory of
 * `dir` whose owner is gone. Returns what it did, one line each.
 */
export async function removeDirLeftovers(dir: string): Promise<string[]> {
  const parent = dirname(dir), name = basename(dir);
  const notes: string[] = [];
  if (!existsSync(dir)) {
    const entries = existsSync(parent) ? await Array.fromAsync(Deno.readDir(parent)) : [];
    const old = entries.find((e) =>
      e.isDirectory && isTempDirName(e.name, name) && e.name.endsWith(".old") && ownerGone(e.name)
    );
    if (old !== undefined) {
      await Deno.rename(join(parent, old.name), dir);
      notes.push(`restored ${dir} from ${old.name}, left by a run killed while replacing it`);
    }
  }
  const removed = await removeLeftovers(
    parent,
    (e) => e.isDirectory && isTempDirName(e.name, name),
  );
  return [...notes, ...removed.map((p) => `removed ${p}, left by a killed run`)];
}

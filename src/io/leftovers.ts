/**
 * Temporary files and directories that say who made them, so that the leftovers of a killed
 * process can be removed by the next process that writes the same folder, without touching
 * those of a process still at work.
 *
 * Every temporary name carries an owner tag `<host>-<pid>`: eight hex digits of the SHA-256 of
 * the host name, and the process id.
 *
 * - files (atomic writes): `.<name>.<host>-<pid>.<random>.tmp`
 * - directories (written whole, then renamed into place): `.<name>.tmp-<host>-<pid>-<random>`,
 *   and `<that>.old` for the directory they replace while it is being swapped out.
 *
 * A leftover is removed when its owner is gone ({@linkcode ownerGone}): it was made on this host
 * by a process that is not running (Linux: no `/proc/<pid>`, or a zombie). Where that cannot be
 * told (another host sharing the filesystem, no `/proc`), it is kept. Names without a tag were
 * made by versions before this one, which never cleaned up after a kill; they are removed too.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { basename, dirname, join } from "node:path";

/** Whether a process is running: `"gone"` only when that is certain. */
export type ProcessState = "running" | "gone" | "unknown";

let hostTagCache: string | undefined;

/** The host name, or `""` where it cannot be read. */
export function hostName(): string {
  try {
    return Deno.hostname();
  } catch {
    return "";
  }
}

/** Eight hex digits of the SHA-256 of this host's name. */
function hostTag(): string {
  hostTagCache ??= createHash("sha256").update(hostName()).digest("hex").slice(0, 8);
  return hostTagCache;
}

/** This process's owner tag, `<host>-<pid>` (see the module documentation). */
export function ownerTag(): string {
  return `${hostTag()}-${Deno.pid}`;
}

/**
 * Whether process `pid` of host `host` (a name, or the 8-digit tag of one) is running. Only
 * this host's processes can be checked, and only on Linux (`/proc`); a zombie counts as gone.
 */
export function processState(pid: number, host: string): ProcessState {
  if (host !== hostName() && host !== hostTag()) return "unknown";
  if (pid === Deno.pid) return "running";
  if (Deno.build.os !== "linux") return "unknown";
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // Field 3, after the parenthesised command name, is the state; Z is a zombie.
    const close = stat.lastIndexOf(")");
    return stat.slice(close + 2, close + 3) === "Z" ? "gone" : "running";
  } catch (error) {
    return error instanceof Deno.errors.NotFound ? "gone" : "unknown";
  }
}

const RANDOM = () => crypto.randomUUID().slice(0, 8);

/** A fresh temporary file name next to `path`: `.<name>.<tag>.<random>.tmp`. */
export function tempFilePath(path: string): string {
  return join(dirname(path), `.${basename(path)}.${ownerTag()}.${RANDOM()}.tmp`);
}

/** The prefix of the temporary directories for directory `name`: `.<name>.tmp-<tag>-`. */
export function tempDirPrefix(name: string): string {
  return `.${name}.tmp-${ownerTag()}-`;
}

const TAGGED_FILE = /^\..+\.([0-9a-f]{8})-(\d+)\.[0-9a-z]+\.tmp$/;
const TAGGED_DIR = /^\..+\.tmp-([0-9a-f]{8})-(\d+)-[^.]+(?:\.old)?$/;

/**
 * Whether the process that made the temporary `name` is certainly gone; names without an owner
 * tag (older versions) count as gone.
 */
export function ownerGone(name: string): boolean {
  const m = TAGGED_FILE.exec(name) ?? TAGGED_DIR.exec(name);
  return m === null || tagGone(`${m[1]}-${m[2]}`);
}

/** Whether the process of owner tag `tag` (`<host>-<pid>`, see {@linkcode ownerTag}) is gone. */
export function tagGone(tag: string): boolean {
  const m = /^([0-9a-f]{8})-(\d+)$/.exec(tag);
  return m !== null && processState(Number(m[2]), m[1]) === "gone";
}

/** True for a temporary file name of an atomic write (`.<name>.….tmp`). */
export function isTempFileName(name: string): boolean {
  return name.startsWith(".") && name.endsWith(".tmp");
}

/**
 * True for a temporary directory name of directory `name` (`.<name>.tmp-…`, and its `.old`).
 */
export function isTempDirName(entry: string, name: string): boolean {
  return entry.startsWith(`.${name}.tmp-`);
}

/**
 * Removes the entries of `dir` that `isLeftover` selects and whose owner is gone (files, or
 * directories with everything in them). Returns the paths removed; a missing `dir` has none.
 */
export async function removeLeftovers(
  dir: string,
  isLeftover: (entry: Deno.DirEntry) => boolean,
): Promise<string[]> {
  const removed: string[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return removed;
    throw error;
  }
  for (const e of entries) {
    if (!isLeftover(e) || !ownerGone(e.name)) continue;
    const path = join(dir, e.name);
    try {
      await Deno.remove(path, { recursive: true });
      removed.push(path);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) {
        throw new Error(`${path}: cannot remove this leftover of a killed run: ${error}`, {
          cause: error,
        });
      }
    }
  }
  return removed;
}

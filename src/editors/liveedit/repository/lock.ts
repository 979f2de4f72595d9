/**
 * A lock file that keeps two processes from writing one repository at once, holding the
 * owner's pid, host and start time as JSON. It is written atomically: the JSON goes into a
 * temporary file (named after this process, see `src/io/leftovers.ts`), which is then hard
 * linked to `lock` (the link fails when a lock exists) and removed, so a kill at any moment
 * leaves either no lock or a complete one, never an empty file.
 *
 * Locks of older versions: they created the lock file first and wrote it after, so a kill in
 * between left an empty (or cut-off) lock that blocked the repository until removed by hand. A
 * lock that is empty or unreadable is now treated as stale: broken as below, with a warning.
 *
 * Stale locks: a process killed before it could remove its lock leaves the file behind. When
 * the lock names this host and a pid that is not running (Linux: no `/proc/<pid>`, or a zombie),
 * {@linkcode acquireLock} breaks it: it renames the file aside (to a temporary name of this
 * process, so a kill before the removal leaves a leftover the next taker removes), checks that
 * what it moved is still the stale lock it read (if another process broke and retook it in
 * between, the move is undone and the repository reported locked), removes it and tries again
 * once, reporting a warning. (Older versions moved it to `lock.stale-<uuid>`; those leftovers
 * are removed too.) Where liveness cannot be decided (another host, no `/proc`, no permission
 * to read it) the lock is treated as held and the error says which file to remove by hand once
 * the named process is known to be gone.
 *
 * @module
 */
import { join } from "node:path";
import { hostName, processState, removeLeftovers, tempFilePath } from "../../../io/leftovers.ts";

/** What a lock file holds. */
export interface LockOwner {
  /** Process id of the owner. */
  pid: number;
  /** Host name of the owner ("" where it could not be read). */
  host: string;
  /** When the lock was taken, ISO 8601. */
  since: string;
  /** Random token that tells one taking of the lock from another. */
  token: string;
}

/** Thrown when another live (or possibly live) process holds a repository's lock. */
export class RepositoryLockedError extends Error {
  /** The lock file. */
  readonly lockPath: string;
  /** Its owner, when the file could be read. */
  readonly owner: LockOwner | undefined;

  /** Builds the message from the lock file and its owner. */
  constructor(lockPath: string, owner: LockOwner | undefined, detail: string) {
    super(
      `${lockPath}: repository is locked${
        owner ? ` by pid ${owner.pid} on host "${owner.host}" since ${owner.since}` : ""
      } (${detail}); close it there, or delete ${lockPath} if that process is gone`,
    );
    this.name = "RepositoryLockedError";
    this.lockPath = lockPath;
    this.owner = owner;
  }
}

/** A held lock; {@linkcode HeldLock.release} removes the file if it is still ours. */
export class HeldLock {
  /** The lock file. */
  readonly path: string;
  /** What was written into it. */
  readonly owner: LockOwner;

  /** Wraps a lock file written by {@linkcode acquireLock}. */
  constructor(path: string, owner: LockOwner) {
    this.path = path;
    this.owner = owner;
  }

  /** Removes the lock file when it still holds this lock's token; never throws. */
  async release(): Promise<void> {
    const current = await readLock(this.path);
    if (typeof current === "object" && current.token === this.owner.token) {
      await Deno.remove(this.path).catch(() => {});
    }
  }
}

/** The lock file's name inside a repository directory. */
export const LOCK_FILE = "lock";

/**
 * Takes the lock of repository `dir` (the file `dir/lock`), breaking a stale one as described
 * in the module doc and reporting that through `warn`. Throws
 * {@linkcode RepositoryLockedError} when it is held.
 */
export async function acquireLock(dir: string, warn: (message: string) => void): Promise<HeldLock> {
  const path = join(dir, LOCK_FILE);
  let broken = false;
  for (let attempt = 0;; attempt++) {
    const owner: LockOwner = {
      pid: Deno.pid,
      host: hostName(),
      since: new Date().toISOString(),
      token: crypto.randomUUID(),
    };
    if (await createLock(path, owner)) {
      // Temporary files of processes killed while taking or breaking the lock.
      await removeLeftovers(
        dir,
        (e) => e.isFile && /^(\.lock\..*\.tmp|lock\.stale-.*)$/.test(e.name),
      )
        .catch(() => []); // best effort: the lock is ours either way
      return new HeldLock(path, owner);
    }
    const current = await readLock(path);
    if (current === "missing") {
      if (attempt < 3) continue; // released meanwhile: try again
      throw new RepositoryLockedError(path, undefined, "the lock keeps coming and going");
    }
    if (current !== "unreadable") {
      const live = isLive(current);
      if (live !== false) {
        const why = current.pid === Deno.pid && current.host === hostName()
          ? "already open in this process"
          : live === true
          ? "that process is running"
          : "cannot tell whether that process is running";
        throw new RepositoryLockedError(path, current, why);
      }
    }
    if (broken || !(await breakStale(path, current))) {
      throw new RepositoryLockedError(
        path,
        current === "unreadable" ? undefined : current,
        "another process took the lock meanwhile",
      );
    }
    broken = true;
    warn(
      current === "unreadable"
        ? `${path}: removed an empty or unreadable lock (left by an older version killed while ` +
          "taking it)"
        : `${path}: removed a stale lock of pid ${current.pid} (since ${current.since}): not running`,
    );
  }
}

/**
 * Writes `owner` to a temporary file and links it to `path`; false when `path` exists. The
 * temporary file is removed either way.
 */
async function createLock(path: string, owner: LockOwner): Promise<boolean> {
  const tmp = tempFilePath(path);
  try {
    await Deno.writeTextFile(tmp, JSON.stringify(owner) + "\n", { createNew: true });
    await Deno.link(tmp, path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) return false;
    throw new Error(`${path}: cannot create the lock file: ${(error as Error).message}`, {
      cause: error,
    });
  } finally {
    await Deno.remove(tmp).catch(() => {});
  }
}

/**
 * Moves a stale (or unreadable) lock aside (to a temporary name) and removes it; false (lock
 * restored) if what it moved was not that lock.
 */
async function breakStale(path: string, stale: LockOwner | "unreadable"): Promise<boolean> {
  const aside = tempFilePath(path);
  try {
    await Deno.rename(path, aside);
  } catch {
    return false;
  }
  const moved = await readLock(aside);
  const same = stale === "unreadable"
    ? moved === "unreadable"
    : typeof moved === "object" && moved.token === stale.token;
  if (!same) {
    await Deno.link(aside, path).catch(() => {});
    await Deno.remove(aside).catch(() => {});
    return false;
  }
  await Deno.remove(aside).catch(() => {});
  return true;
}

/** The lock at `path`: its owner, `"missing"`, or `"unreadable"` (empty, cut off, not ours). */
async function readLock(path: string): Promise<LockOwner | "missing" | "unreadable"> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    return error instanceof Deno.errors.NotFound ? "missing" : "unreadable";
  }
  try {
    const o = JSON.parse(text);
    if (
      Number.isSafeInteger(o?.pid) && typeof o.host === "string" &&
      typeof o.since === "string" && typeof o.token === "string"
    ) return o as LockOwner;
  } catch {
    // empty, cut off or not JSON
  }
  return "unreadable";
}

/** true: running; false: certainly not running on this host; undefined: cannot tell. */
function isLive(owner: LockOwner): boolean | undefined {
  if (owner.host === "") return undefined;
  const state = processState(owner.pid, owner.host);
  return state === "unknown" ? undefined : state === "running";
}

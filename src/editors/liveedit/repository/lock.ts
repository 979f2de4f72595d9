/**
 * A lock file that keeps two processes from writing one repository at once: created with
 * O_EXCL (`createNew`), holding the owner's pid, host and start time as JSON.
 *
 * Stale locks: a process killed before it could remove its lock leaves the file behind. When
 * the lock names this host and a pid that is not running (Linux: no `/proc/<pid>`, or a zombie),
 * {@linkcode acquireLock} breaks it: it renames the file aside, checks that what it moved is
 * still the stale lock it read (if another process broke and retook it in between, the move is
 * undone and the repository reported locked), removes it and tries again once, reporting a
 * warning. Where liveness cannot be decided (another host, no `/proc`, no permission to read
 * it) the lock is treated as held and the error says which file to remove by hand once the
 * named process is known to be gone.
 *
 * @module
 */
import { join } from "node:path";

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
    const current = await readOwner(this.path);
    if (current?.token === this.owner.token) await Deno.remove(this.path).catch(() => {});
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
  for (let attempt = 0;; attempt++) {
    const owner: LockOwner = {
      pid: Deno.pid,
      host: hostname(),
      since: new Date().toISOString(),
      token: crypto.randomUUID(),
    };
    try {
      await Deno.writeTextFile(path, JSON.stringify(owner) + "\n", { createNew: true });
      return new HeldLock(path, owner);
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) {
        throw new Error(`${path}: cannot create the lock file: ${(error as Error).message}`, {
          cause: error,
        });
      }
    }
    const current = await readOwner(path);
    if (current === undefined) {
      throw new RepositoryLockedError(
        path,
        undefined,
        "the lock file is unreadable or being written",
      );
    }
    const live = isLive(current);
    if (live !== false) {
      const why = current.pid === Deno.pid && current.host === hostname()
        ? "already open in this process"
        : live === true
        ? "that process is running"
        : "cannot tell whether that process is running";
      throw new RepositoryLockedError(path, current, why);
    }
    if (attempt > 0 || !(await breakStale(path, current))) {
      throw new RepositoryLockedError(path, current, "another process took the lock meanwhile");
    }
    warn(
      `${path}: removed a stale lock of pid ${current.pid} (since ${current.since}): not running`,
    );
  }
}

/** Moves a stale lock aside and removes it; false (lock restored) if it was not the stale one. */
async function breakStale(path: string, stale: LockOwner): Promise<boolean> {
  const aside = `${path}.stale-${crypto.randomUUID()}`;
  try {
    await Deno.rename(path, aside);
  } catch {
    return false;
  }
  const moved = await readOwner(aside);
  if (moved?.token !== stale.token) {
    await Deno.link(aside, path).catch(() => {});
    await Deno.remove(aside).catch(() => {});
    return false;
  }
  await Deno.remove(aside).catch(() => {});
  return true;
}

async function readOwner(path: string): Promise<LockOwner | undefined> {
  try {
    const o = JSON.parse(await Deno.readTextFile(path));
    if (
      Number.isSafeInteger(o?.pid) && typeof o.host === "string" &&
      typeof o.since === "string" && typeof o.token === "string"
    ) return o as LockOwner;
  } catch {
    // missing, partially written or not ours: reported as unreadable
  }
  return undefined;
}

/** true: running; false: certainly not running on this host; undefined: cannot tell. */
function isLive(owner: LockOwner): boolean | undefined {
  if (owner.host === "" || owner.host !== hostname()) return undefined;
  if (owner.pid === Deno.pid) return true;
  if (Deno.build.os !== "linux") return undefined;
  try {
    const stat = Deno.readTextFileSync(`/proc/${owner.pid}/stat`);
    // Field 3, after the parenthesised command name, is the state; Z is a zombie.
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch (error) {
    return error instanceof Deno.errors.NotFound ? false : undefined;
  }
}

function hostname(): string {
  try {
    return Deno.hostname();
  } catch {
    return "";
  }
}

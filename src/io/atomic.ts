/**
 * Atomic file writes: data goes to a temporary file in the target's directory, is fsynced, and
 * is renamed over the target, so a file a user keeps is either the old one or the complete new
 * one, never half-written.
 *
 * @module
 */
import { dirname } from "node:path";
import { tempFilePath } from "./leftovers.ts";

/** Appends `chunk` to the file being written; resolves once all of it is written. */
export type WriteChunk = (chunk: Uint8Array) => Promise<void>;

/**
 * Produces a file's contents by calling `write` with successive chunks. Throwing (or rejecting)
 * aborts the write and leaves the old file in place.
 */
export type ChunkWriter = (write: WriteChunk) => Promise<void> | void;

/**
 * Writes `data` to `path` atomically: into a uniquely named temporary file next to `path`
 * (named after this process, see `leftovers.ts`, so a later run can remove it after a kill),
 * fsync, rename over `path`, then fsync the directory (best effort: skipped where directories
 * cannot be synced). On any error the temporary file is removed, `path` is untouched, and the
 * error is rethrown with `path` in its message (the original as `cause`).
 *
 * `data` is bytes, a string (written as UTF-8), or a {@linkcode ChunkWriter} that streams chunks.
 *
 * @example
 * ```ts
 * import { writeFileAtomic } from "./atomic.ts";
 * const dir = await Deno.makeTempDir();
 * await writeFileAtomic(`${dir}/a.bin`, async (write) => {
 *   await write(new Uint8Array([1, 2]));
 *   await write(new Uint8Array([3]));
 * });
 * if ((await Deno.readFile(`${dir}/a.bin`)).length !== 3) throw new Error("length");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeFileAtomic(
  path: string,
  data: Uint8Array | string | ChunkWriter,
): Promise<void> {
  const dir = dirname(path);
  const tmp = tempFilePath(path);
  let file: Deno.FsFile | undefined;
  let finished = false;
  try {
    const out = await Deno.open(tmp, { write: true, createNew: true });
    file = out;
    const write: WriteChunk = async (chunk) => {
      if (finished) throw new Error("write() called after the writer finished");
      let done = 0;
      while (done < chunk.length) done += await out.write(chunk.subarray(done));
    };
    if (typeof data === "string") await write(new TextEncoder().encode(data));
    else if (data instanceof Uint8Array) await write(data);
    else await data(write);
    finished = true;
    await out.sync();
    file = undefined;
    out.close();
    await Deno.rename(tmp, path);
  } catch (error) {
    finished = true;
    file?.close();
    await Deno.remove(tmp).catch(() => {});
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`writing ${path} failed: ${reason}`, { cause: error });
  }
  await syncDirectory(dir);
}

/**
 * Writes `value` as pretty-printed JSON (2-space indent, trailing newline) to `path`
 * atomically, like {@linkcode writeFileAtomic}. Values JSON cannot represent (BigInt, cycles,
 * `undefined` at the top) are rejected with `path` in the message and nothing is written.
 *
 * @example
 * ```ts
 * import { writeJsonAtomic } from "./atomic.ts";
 * const dir = await Deno.makeTempDir();
 * await writeJsonAtomic(`${dir}/config.json`, { hidden: 32 });
 * if (JSON.parse(await Deno.readTextFile(`${dir}/config.json`)).hidden !== 32) throw new Error();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  let text: string | undefined;
  try {
    text = JSON.stringify(value, null, 2);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`writing ${path} failed: value is not JSON-serializable: ${reason}`, {
      cause: error,
    });
  }
  if (text === undefined) {
    throw new Error(`writing ${path} failed: value is not JSON-serializable (${typeof value})`);
  }
  await writeFileAtomic(path, text + "\n");
}

/** Fsyncs a directory so a rename in it is durable; ignored where directories can't be opened. */
async function syncDirectory(dir: string): Promise<void> {
  let handle: Deno.FsFile | undefined;
  try {
    handle = await Deno.open(dir, { read: true });
    await handle.sync();
  } catch {
    // Best effort: Windows cannot open directories, some filesystems reject fsync on them.
  } finally {
    handle?.close();
  }
}

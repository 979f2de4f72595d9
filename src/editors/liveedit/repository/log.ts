/**
 * Reading an expert repository's `records.log` (framed records, see `format.ts`): replaying it
 * from the start into the live edits, with the damaged-tail rule of `repository.ts`, and
 * reading one record again with its frame and checksum checked.
 *
 * @module
 */
import { writeFileAtomic } from "../../../io/atomic.ts";
import {
  crc32Of,
  decodeFrameHeader,
  decodePayload,
  RECORD_HEADER_BYTES,
  RECORD_MAGIC,
} from "./format.ts";
import type { ExpertDims, ExpertInfo } from "./types.ts";

/** Opens the record file `path` for reading and appending; throws naming it. */
export async function openLog(path: string): Promise<Deno.FsFile> {
  try {
    return await Deno.open(path, { read: true, write: true });
  } catch (error) {
    throw new Error(`${path}: cannot open the record file: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/** An edit record of the file: where it is, and its id, time and request. */
export type IndexedEdit = ExpertInfo & { offset: number; length: number };

/** What replaying a record file gives. */
export interface Replayed {
  /** The live edits (edit records not undone), by id, in id order. */
  readonly edits: Map<number, IndexedEdit>;
  /** The id the next edit gets: above every id the file has used. */
  readonly nextId: number;
  /** The end of the last good record (the file's size after a dropped tail). */
  readonly end: number;
}

/**
 * Replays the record file `file` (named `path` in errors) from the start into the live edits:
 * an edit record adds one (ids must increase), a tombstone removes a live one, an `ids`
 * record (compaction) raises the next id. A damaged tail (a torn last write, or a last record
 * failing its checksum, with no valid record after it) is saved to `<path>.tail-<time>.bin`,
 * reported through `warn` and truncated away (fsynced); damage followed by a valid record
 * throws naming the byte offsets, truncating nothing.
 */
export async function replayLog(
  file: Deno.FsFile,
  path: string,
  dims: ExpertDims,
  warn: (message: string) => void,
): Promise<Replayed> {
  const edits = new Map<number, IndexedEdit>();
  const size = (await file.stat()).size;
  let offset = 0, lastEdit = 0, nextId = 1;
  while (offset < size) {
    const head = await readAt(file, offset, Math.min(RECORD_HEADER_BYTES, size - offset));
    const header = decodeFrameHeader(head);
    let problem: string | undefined;
    let payload: Uint8Array | undefined;
    if (typeof header === "string") problem = header;
    else if (offset + RECORD_HEADER_BYTES + header.payloadLength > size) {
      problem = `a ${header.payloadLength}-byte payload runs past the end of the file`;
    } else {
      payload = await readAt(file, offset + RECORD_HEADER_BYTES, header.payloadLength);
      if (crc32Of(payload) !== header.payloadCrc) problem = "payload checksum mismatch";
    }
    if (problem !== undefined) {
      const later = await findValidRecord(file, offset + 4, size);
      if (later !== undefined) {
        throw new Error(
          `${path}: corrupt record at byte offset ${offset} (${problem}) followed by a valid record at byte offset ${later}; not truncating: restore the file from a backup or cut the damaged range out by hand`,
        );
      }
      const saved = `${path}.tail-${new Date().toISOString().replace(/[:.]/g, "-")}.bin`;
      await writeFileAtomic(saved, await readAt(file, offset, size - offset));
      warn(
        `${path}: dropped a torn or corrupt tail of ${
          size - offset
        } bytes at byte offset ${offset} (${problem}); the ${edits.size} edits before it are intact; the dropped bytes are kept in ${saved}`,
      );
      await file.truncate(offset);
      await file.syncData();
      break;
    }
    const where = `${path}: record at byte offset ${offset}`;
    const { body: b } = decodePayload(payload!, dims, where);
    const length = RECORD_HEADER_BYTES + payload!.length;
    if (b.type === "edit") {
      if (b.id <= lastEdit) throw new Error(`${where}: edit id ${b.id} is not above ${lastEdit}`);
      edits.set(b.id, { id: b.id, time: b.time, request: b.request, offset, length });
      nextId = Math.max(nextId, b.id + 1);
      lastEdit = b.id;
    } else if (b.type === "undo") {
      if (!edits.delete(b.id)) throw new Error(`${where}: undo of edit ${b.id}, which is not live`);
    } else {
      nextId = Math.max(nextId, b.next);
    }
    offset += length;
  }
  return { edits, nextId, end: offset };
}

/**
 * The record of `length` bytes at `offset` of `file`, its frame and checksum checked again;
 * throws naming `name` and the offset when it changed since it was indexed.
 */
export async function readRecordAt(
  file: Deno.FsFile,
  offset: number,
  length: number,
  name: string,
): Promise<Uint8Array> {
  const record = await readAt(file, offset, length);
  const header = decodeFrameHeader(record);
  const problem = typeof header === "string"
    ? header
    : header.payloadLength + RECORD_HEADER_BYTES !== length
    ? "record length changed"
    : crc32Of(record.subarray(RECORD_HEADER_BYTES)) !== header.payloadCrc
    ? "payload checksum mismatch"
    : undefined;
  if (problem !== undefined || record.length !== length) {
    throw new Error(
      `${name}: record at byte offset ${offset} is damaged since it was opened (${
        problem ?? "file shrank"
      })`,
    );
  }
  return record;
}

/**
 * The byte offset of the first valid record (magic, header checksum, payload within the file,
 * payload checksum) at a 4-aligned offset in `[from, size)`, or undefined.
 */
async function findValidRecord(
  file: Deno.FsFile,
  from: number,
  size: number,
): Promise<number | undefined> {
  const CHUNK = 1 << 22;
  for (let start = from - (from % 4); start < size; start += CHUNK) {
    const chunk = await readAt(file, start, Math.min(CHUNK + RECORD_HEADER_BYTES, size - start));
    for (let i = 0; i < Math.min(CHUNK, chunk.length); i += 4) {
      if (chunk[i] !== RECORD_MAGIC[0] || chunk[i + 1] !== RECORD_MAGIC[1]) continue;
      const at = start + i;
      const header = decodeFrameHeader(chunk.subarray(i, i + RECORD_HEADER_BYTES));
      if (typeof header === "string" || at + RECORD_HEADER_BYTES + header.payloadLength > size) {
        continue;
      }
      const payload = await readAt(file, at + RECORD_HEADER_BYTES, header.payloadLength);
      if (crc32Of(payload) === header.payloadCrc) return at;
    }
  }
  return undefined;
}

/** Reads up to `length` bytes at `offset` (fewer only at the end of the file). */
export async function readAt(
  file: Deno.FsFile,
  offset: number,
  length: number,
): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  await file.seek(offset, Deno.SeekMode.Start);
  let done = 0;
  while (done < length) {
    const n = await file.read(out.subarray(done));
    if (n === null) return out.subarray(0, done);
    done += n;
  }
  return out;
}

/** The bytes of `parts`, one after another, in a new array. */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

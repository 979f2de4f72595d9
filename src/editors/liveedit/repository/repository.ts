/**
 * The expert repository: every edit a user made (its request and its expert), kept durable on
 * disk or, for evaluation runs, in memory behind the same interface.
 *
 * A repository directory holds `manifest.json` (see `manifest.ts`), `records.log` (append-only
 * framed records, `format.ts`: edits, tombstones (undo) and, after compaction, the next id;
 * replayed on open by `log.ts`) and `lock` while a process has it open (`lock.ts`).
 *
 * Guarantees: `append` and `undo` resolve only after their record is written and fsynced;
 * reopening after a crash keeps every acknowledged edit. A damaged tail is dropped with a
 * warning (its bytes kept for inspection); damage followed by a valid record is an error
 * naming the file and the byte offset, and nothing is truncated.
 *
 * @module
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../../../io/atomic.ts";
import { Tensor } from "../../../tensor/tensor.ts";
import { decodeExpert, decodePayload, encodeRecord, RECORD_HEADER_BYTES } from "./format.ts";
import { acquireLock, type HeldLock } from "./lock.ts";
import { concat, type IndexedEdit, openLog, readRecordAt, replayLog } from "./log.ts";
import {
  makeManifest,
  openManifest,
  RECORDS_FILE,
  removeTemporaries,
  type RepositoryInit,
  type RepositoryManifest,
} from "./manifest.ts";
import { type ExpertBatch, loadEditorState, saveEditorState } from "./state.ts";
import {
  checkRequest,
  type Edit,
  type EditRequest,
  EXPERT_TENSORS,
  expertData,
  type ExpertDims,
  expertElements,
  type ExpertInfo,
  expertShape,
  type StoredExpert,
} from "./types.ts";

/** Options of {@linkcode ExpertRepository.open}. */
export interface OpenRepositoryOptions {
  /**
   * Creates the repository when `dir` has none; when it has one, its manifest must agree
   * (else an error naming the manifest and field).
   */
  init?: RepositoryInit;
  /** Receives each warning (also kept in `warnings`); default `console.warn`. */
  onWarning?: (message: string) => void;
}

/** Where an acknowledged edit lives: a record of the file, or (memory mode) its data. */
type Entry = IndexedEdit | (ExpertInfo & { data: Float32Array });

/**
 * An expert repository. Ids start at 1, increase by one per append and are never reused
 * (not even after undo and compaction). Iteration (`for await`) and {@linkcode list} are in
 * id order. Operations on one repository run one after another in call order.
 *
 * @example
 * ```ts
 * import { ExpertRepository } from "./repository.ts";
 * import { Tensor } from "../../../tensor/tensor.ts";
 * const dims = { e: 1, m: 2, r: 1, d: 3 };
 * const t = (n: number) => new Tensor("f32", [1, n], new Float32Array(n).fill(0.5));
 * const dir = await Deno.makeTempDir();
 * const repo = await ExpertRepository.open(dir, { init: { backbone: "tiny", dims } });
 * const id = await repo.append({
 *   request: { prompt: "What is shown?", target: "a cat" },
 *   eqr: t(2), evr: t(2), C: t(3), R: t(3),
 * });
 * await repo.close();
 * const again = await ExpertRepository.open(dir);
 * if ((await again.get(id)).request.target !== "a cat") throw new Error("durable");
 * await again.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class ExpertRepository {
  /** The repository directory; undefined in memory mode. */
  readonly dir: string | undefined;
  /** The manifest (in memory mode: built from the init, not written). */
  readonly manifest: RepositoryManifest;
  /** Warnings raised while opening (e.g. a dropped torn tail, a broken stale lock). */
  readonly warnings: readonly string[];
  readonly #entries = new Map<number, Entry>();
  readonly #lock: HeldLock | undefined;
  #file: Deno.FsFile | undefined;
  #end = 0;
  #nextId = 1;
  #queue: Promise<unknown> = Promise.resolve();
  #failure: Error | undefined;
  #closed = false;

  private constructor(
    dir: string | undefined,
    manifest: RepositoryManifest,
    warnings: string[],
    lock: HeldLock | undefined,
  ) {
    this.dir = dir;
    this.manifest = manifest;
    this.warnings = warnings;
    this.#lock = lock;
  }

  /** A repository held in memory only (nothing is written), with the same interface. */
  static memory(init: RepositoryInit): ExpertRepository {
    return new ExpertRepository(undefined, makeManifest(init, "memory repository"), [], undefined);
  }

  /**
   * Opens (or, with `init`, creates) the repository in `dir`: takes its lock, replays
   * `records.log` (verifying every checksum), drops a damaged tail with a warning, and
   * removes temporary files a crashed compaction left. Throws naming the file (and byte
   * offset) for a missing manifest or record file, corruption before the tail, or a manifest
   * that disagrees with `init`; {@linkcode RepositoryLockedError} when another process has it.
   */
  static async open(dir: string, options: OpenRepositoryOptions = {}): Promise<ExpertRepository> {
    const warnings: string[] = [];
    const warn = (message: string) => {
      warnings.push(message);
      (options.onWarning ?? console.warn)(message);
    };
    if (options.init !== undefined) await Deno.mkdir(dir, { recursive: true });
    const lock = await acquireLock(dir, warn).catch((error) => {
      if (error instanceof Deno.errors.NotFound || !existsSync(dir)) {
        throw new Error(`${dir}: no such repository directory`, { cause: error });
      }
      throw error;
    });
    try {
      const manifest = await openManifest(dir, options.init);
      const repo = new ExpertRepository(dir, manifest, warnings, lock);
      await removeTemporaries(dir);
      await repo.#replay(warn);
      return repo;
    } catch (error) {
      await lock.release();
      throw error;
    }
  }

  /** Number of live (not undone) experts. */
  get size(): number {
    return this.#entries.size;
  }

  /** The id the next append will get. */
  get nextId(): number {
    return this.#nextId;
  }

  /** Expert dims (from the manifest). */
  get dims(): ExpertDims {
    return this.manifest.dims;
  }

  /** True when edit `id` is live. */
  has(id: number): boolean {
    return this.#entries.has(id);
  }

  /** Id, time and request of every live expert, in id order. */
  list(): ExpertInfo[] {
    return [...this.#entries.values()].map(({ id, time, request }) => ({ id, time, request }));
  }

  /**
   * Stores `edit` and resolves with its id once its record is written and fsynced: the edit
   * is acknowledged. Tensors are `[e, m]` / `[r, d]` (or with a leading 1) f32, copied at the
   * call. Throws naming the tensor or request field at fault, or the file when writing fails
   * (the partial record is then truncated away; if even that fails, the repository refuses
   * further work until reopened).
   */
  append(edit: Edit): Promise<number> {
    this.#usable();
    const checked = this.#check(edit, "edit");
    return this.#run(async () => {
      const id = this.#nextId++;
      const framed = this.#frame(id, new Date().toISOString(), checked);
      await this.#write([framed.record], [framed.entry]);
      return id;
    });
  }

  /**
   * Undoes edit `id`: appends a tombstone (fsynced before this resolves) and the expert leaves
   * {@linkcode list}, iteration and {@linkcode get}. Throws for an id that is not live.
   */
  undo(id: number): Promise<void> {
    this.#usable();
    return this.#run(async () => {
      if (!this.#entries.has(id)) throw new Error(`${this.#name}: ${this.#unknown(id)}`);
      const record = encodeRecord({ type: "undo", id, time: new Date().toISOString() });
      if (this.dir !== undefined) await this.#appendBytes(record);
      this.#entries.delete(id);
    });
  }

  /**
   * Undoes every live edit with one write of their tombstones (fsynced before this resolves);
   * resolves with their ids, in id order (none: nothing is written).
   */
  undoAll(): Promise<number[]> {
    this.#usable();
    return this.#run(async () => {
      const ids = [...this.#entries.keys()];
      if (ids.length === 0) return ids;
      const time = new Date().toISOString();
      if (this.dir !== undefined) {
        await this.#appendBytes(concat(ids.map((id) => encodeRecord({ type: "undo", id, time }))));
      }
      this.#entries.clear();
      return ids;
    });
  }

  /** Edit `id` with its tensors (fresh copies), re-verifying its checksum; throws if not live. */
  get(id: number): Promise<StoredExpert> {
    this.#usable();
    return this.#run(() => this.#read(id));
  }

  /** The live experts in id order, each read when reached. */
  async *[Symbol.asyncIterator](): AsyncGenerator<StoredExpert> {
    for (const id of [...this.#entries.keys()]) {
      if (this.#entries.has(id)) yield await this.get(id);
    }
  }

  /** All live experts stacked in id order (`[n, e, m]`, `[n, r, d]`), e.g. to fill a pool. */
  stacked(): Promise<ExpertBatch> {
    this.#usable();
    return this.#run(async () => {
      const dims = this.dims, n = this.#entries.size, experts: ExpertInfo[] = [];
      const out = Object.fromEntries(EXPERT_TENSORS.map((name) => {
        const [a, b] = expertShape(dims, name);
        return [name, new Tensor("f32", [n, a, b], new Float32Array(n * a * b))];
      })) as Record<typeof EXPERT_TENSORS[number], Tensor<"f32">>;
      let k = 0;
      for (const id of this.#entries.keys()) {
        const expert = await this.#read(id);
        experts.push({ id: expert.id, time: expert.time, request: expert.request });
        for (const name of EXPERT_TENSORS) {
          out[name].data.set(expert[name].data, k * expert[name].size);
        }
        k++;
      }
      return { experts, ...out };
    });
  }

  /**
   * Rewrites `records.log` with only the live edits (same ids, times and bytes) preceded by
   * the next id, atomically (temporary file, fsync, rename): a crash leaves the old or the new
   * file, both complete. Tombstones and undone edits are gone afterwards. Nothing to do in
   * memory mode.
   */
  compact(): Promise<void> {
    this.#usable();
    return this.#run(async () => {
      if (this.dir === undefined) return;
      const path = this.#recordsPath;
      const moved: [number, number][] = [];
      await writeFileAtomic(path, async (write) => {
        const head = encodeRecord({ type: "ids", next: this.#nextId });
        await write(head);
        let at = head.length;
        for (const entry of this.#entries.values()) {
          const loc = entry as { offset: number; length: number };
          const record = await readRecordAt(this.#file!, loc.offset, loc.length, this.#name);
          await write(record);
          moved.push([entry.id, at]);
          at += record.length;
        }
      });
      this.#file!.close();
      try {
        this.#file = await Deno.open(path, { read: true, write: true });
        this.#end = (await this.#file.stat()).size;
      } catch (error) {
        this.#failure = error as Error;
        throw new Error(`${path}: compacted, but cannot reopen it: ${(error as Error).message}`, {
          cause: error,
        });
      }
      for (const [id, offset] of moved) {
        (this.#entries.get(id) as { offset: number }).offset = offset;
      }
    });
  }

  /**
   * Writes every live expert to `path` as one editor-state safetensors file without weights
   * (see `state.ts`), atomically. Holds the stacked experts in memory while writing.
   */
  async export(path: string): Promise<void> {
    const pool = await this.stacked();
    await saveEditorState(path, {
      editor: this.manifest.editor,
      backbone: this.manifest.backbone,
      dims: this.dims,
      weights: {},
      pool,
    });
  }

  /**
   * Appends the experts of an export or editor-state file (its weights are ignored) with one
   * fsync, and resolves with their ids here. Ids: kept as in the file when this repository
   * has never assigned an id (a fresh repository: `nextId` is 1); otherwise new ids in file
   * order. Times and requests are kept. Throws naming `path` when its backbone or dims differ
   * from this repository's. After a crash during import, a prefix of the imported experts
   * may be present.
   */
  async import(path: string): Promise<number[]> {
    this.#usable();
    const state = await loadEditorState(path, {
      backbone: this.manifest.backbone,
      dims: this.dims,
    });
    const { pool } = state;
    return this.#run(async () => {
      const keep = this.#nextId === 1 && this.#entries.size === 0;
      const records: Uint8Array[] = [], entries: Entry[] = [], ids: number[] = [];
      pool.experts.forEach((info, k) => {
        const id = keep ? info.id : this.#nextId + k;
        const row = (t: Tensor<"f32">) => {
          const n = t.shape[1] * t.shape[2];
          return new Tensor("f32", t.shape.slice(1), t.data.subarray(k * n, (k + 1) * n));
        };
        const edit = {
          request: info.request,
          eqr: row(pool.eqr),
          evr: row(pool.evr),
          C: row(pool.C),
          R: row(pool.R),
        };
        const framed = this.#frame(id, info.time, this.#check(edit, `${path}: experts[${k}]`));
        records.push(framed.record);
        entries.push(framed.entry);
        ids.push(id);
      });
      if (ids.length > 0) this.#nextId = ids[ids.length - 1] + 1;
      await this.#write(records, entries);
      return ids;
    });
  }

  /** Waits for pending operations, closes the record file and releases the lock. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#queue.catch(() => {});
    this.#file?.close();
    this.#file = undefined;
    await this.#lock?.release();
  }

  /** `await using repo = await ExpertRepository.open(...)` closes it at scope end. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  get #name(): string {
    return this.dir === undefined ? "memory repository" : this.#recordsPath;
  }

  get #recordsPath(): string {
    return join(this.dir!, RECORDS_FILE);
  }

  #usable(): void {
    if (this.#closed) throw new Error(`${this.#name}: repository is closed`);
    if (this.#failure !== undefined) {
      throw new Error(
        `${this.#name}: an earlier write failure left this handle in an unknown state; reopen the repository`,
        { cause: this.#failure },
      );
    }
  }

  #unknown(id: number): string {
    return Number.isSafeInteger(id) && id >= 1 && id < this.#nextId
      ? `edit ${id} was undone (or never acknowledged)`
      : `no edit ${id} (ids so far: 1..${this.#nextId - 1})`;
  }

  #run<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(task);
    this.#queue = run.catch(() => {});
    return run;
  }

  /** Validates `edit` and copies its tensor data (the caller may reuse its arrays). */
  #check(edit: Edit, where: string): { request: EditRequest; data: Float32Array[] } {
    const request = checkRequest(edit?.request, where);
    const data = EXPERT_TENSORS.map((name) =>
      expertData(edit[name], expertShape(this.dims, name), `${where}: tensor ${name}`).slice()
    );
    return { request, data };
  }

  /** Frames a checked edit as a record, with its index entry (filled in by `#write`). */
  #frame(
    id: number,
    time: string,
    { request, data }: { request: EditRequest; data: Float32Array[] },
  ): { record: Uint8Array; entry: Entry } {
    const record = encodeRecord({ type: "edit", id, time, request }, data);
    if (this.dir !== undefined) {
      return { record, entry: { id, time, request, offset: 0, length: record.length } };
    }
    const all = new Float32Array(expertElements(this.dims));
    let at = 0;
    for (const d of data) {
      all.set(d, at);
      at += d.length;
    }
    return { record, entry: { id, time, request, data: all } };
  }

  /** Appends records (one write, one fsync) and then makes their entries visible. */
  async #write(records: Uint8Array[], entries: Entry[]): Promise<void> {
    if (this.dir !== undefined) {
      const all = records.length === 1 ? records[0] : concat(records);
      let at = this.#end;
      records.forEach((r, k) => {
        (entries[k] as { offset: number }).offset = at;
        at += r.length;
      });
      await this.#appendBytes(all);
    }
    for (const entry of entries) this.#entries.set(entry.id, entry);
  }

  /** Writes `bytes` at the end of the file and fsyncs; on failure truncates back or fails hard. */
  async #appendBytes(bytes: Uint8Array): Promise<void> {
    const file = this.#file!;
    try {
      await file.seek(this.#end, Deno.SeekMode.Start);
      let done = 0;
      while (done < bytes.length) done += await file.write(bytes.subarray(done));
      await file.syncData();
    } catch (error) {
      try {
        await file.truncate(this.#end);
        await file.syncData();
      } catch (rollback) {
        this.#failure = rollback as Error;
      }
      throw new Error(`${this.#name}: append failed: ${(error as Error).message}`, {
        cause: error,
      });
    }
    this.#end += bytes.length;
  }

  async #read(id: number): Promise<StoredExpert> {
    const entry = this.#entries.get(id);
    if (entry === undefined) throw new Error(`${this.#name}: ${this.#unknown(id)}`);
    if ("data" in entry) {
      const { time, request } = entry;
      const bytes = new Uint8Array(entry.data.buffer);
      return decodeExpert({ type: "edit", id, time, request }, bytes, 0, this.dims);
    }
    const record = await readRecordAt(this.#file!, entry.offset, entry.length, this.#name);
    const payload = record.subarray(RECORD_HEADER_BYTES);
    const where = `${this.#name}: record at byte offset ${entry.offset}`;
    const { body, tensorOffset } = decodePayload(payload, this.dims, where);
    if (body.type !== "edit" || body.id !== id) throw new Error(`${where}: is not edit ${id}`);
    return decodeExpert(body, payload, tensorOffset, this.dims);
  }

  /** Replays `records.log` into the index; see the module doc for how damage is handled. */
  async #replay(warn: (message: string) => void): Promise<void> {
    const path = this.#recordsPath;
    this.#file = await openLog(path);
    const { edits, nextId, end } = await replayLog(this.#file, path, this.dims, warn);
    for (const [id, entry] of edits) this.#entries.set(id, entry);
    this.#nextId = nextId;
    this.#end = end;
  }
}

/**
 * The expert pool as the editor keeps it: sealed {@linkcode Segment}s of `segmentSize` experts
 * each, whose files the routing session maps, and a mutable tail (an {@linkcode ExpertPool} in
 * memory) that is fed. An append goes to the tail; when the tail is full, the next append
 * first seals it into a new segment file (one write of `segmentSize` experts, so an append
 * stays O(1) amortised). Undoing an expert of the tail moves the tail's last expert into its
 * row; undoing one of a segment clears its `live` flag (the routing graph masks it).
 *
 * The pool's order — the columns of the routing results — is every segment's live experts in
 * row order, segment after segment, then the tail's. Segment files go into a directory of
 * their own, made on the first seal (in `dir`, default the system's temporary directory) and
 * deleted by {@linkcode SegmentedPool.release}; they are a cache of experts the repository
 * holds durably.
 *
 * @example
 * ```ts ignore
 * const pool = new SegmentedPool({ e: 4, m: 1024, r: 4, d: 2560 }, { segmentSize: 4096 });
 * const id = await pool.add(expert); // the 4097th add seals the first 4096 into a segment file
 * pool.remove(id);
 * await pool.release();
 * ```
 *
 * @module
 */
import * as path from "node:path";
import { type Expert, ExpertPool, type PoolViews } from "./pool.ts";
import type { ExpertDims } from "./repository/types.ts";
import { Segment } from "./segment.ts";

/** Options of {@linkcode SegmentedPool}. */
export interface SegmentedPoolOptions {
  /** Experts per sealed segment (default 4096). */
  readonly segmentSize?: number;
  /** Where the segment directory is made (default: the system's temporary directory). */
  readonly dir?: string;
  /** Initial capacity of the tail (default 16; it doubles up to `segmentSize`). */
  readonly capacity?: number;
}

/** The default number of experts per sealed segment. */
export const DEFAULT_SEGMENT_SIZE = 4096;

/** Where a sealed expert is. */
interface SealedAt {
  readonly segment: Segment;
  readonly row: number;
}

/** Sealed segments plus a fed tail (see the module docs). */
export class SegmentedPool {
  /** Expert dims. */
  readonly dims: ExpertDims;
  /** Experts per sealed segment. */
  readonly segmentSize: number;
  /** The mutable tail (feed its views; change it only through the pool). */
  readonly tail: ExpertPool;
  readonly #parentDir?: string;
  #dir: string | null = null;
  #segments: Segment[] = [];
  readonly #sealed = new Map<number, SealedAt>();
  #version = 0;
  #nextId = 0;
  #sequence = 0;

  /** An empty pool for experts of `dims`. */
  constructor(dims: ExpertDims, options: SegmentedPoolOptions = {}) {
    const size = options.segmentSize ?? DEFAULT_SEGMENT_SIZE;
    if (!Number.isSafeInteger(size) || size < 1) {
      throw new Error(`SegmentedPool: segmentSize must be an integer >= 1, got ${size}`);
    }
    this.dims = dims;
    this.segmentSize = size;
    this.#parentDir = options.dir;
    const expertDims = { eqeN: dims.e, moduleDim: dims.m, loraRank: dims.r, llmMidDim: dims.d };
    this.tail = new ExpertPool(expertDims, Math.min(options.capacity ?? 16, size));
  }

  /** Number of experts (undone ones not counted). */
  get size(): number {
    let n = this.tail.size;
    for (const s of this.#segments) n += s.liveCount;
    return n;
  }

  /** The sealed segments, in pool order. */
  get segments(): readonly Segment[] {
    return this.#segments;
  }

  /** The directory of the segment files (null before the first seal). */
  get directory(): string | null {
    return this.#dir;
  }

  /** Changes whenever the segments or their live flags change (the routing session's key). */
  get version(): number {
    return this.#version;
  }

  /** Ids of the experts in pool order (see the module docs). */
  get ids(): number[] {
    const out: number[] = [];
    for (const s of this.#segments) s.ids.forEach((id, row) => s.isLive(row) && out.push(id));
    out.push(...this.tail.ids);
    return out;
  }

  /** True when the pool holds expert `id`. */
  has(id: number): boolean {
    return this.#sealed.has(id) || this.tail.has(id);
  }

  /**
   * Seals the tail into a segment when it is full, so that the next {@linkcode SegmentedPool.add}
   * cannot fail on a file write (call it before an append that must not be half-done).
   */
  async makeRoom(): Promise<void> {
    if (this.tail.size >= this.segmentSize) await this.#seal();
  }

  /**
   * Appends an expert (copied in) under `id` (default: one above every id so far) and returns
   * the id; seals the tail first when it is full. Throws naming a part of the wrong size or an
   * id that is not a non-negative integer or is already in the pool (nothing changes then).
   */
  async add(expert: Expert, id: number = this.#nextId): Promise<number> {
    if (this.#sealed.has(id)) throw new Error(`SegmentedPool.add: id ${id} is already in the pool`);
    await this.makeRoom();
    this.tail.add(expert, id);
    this.#nextId = Math.max(this.#nextId, id + 1);
    return id;
  }

  /** Makes room for `capacity` experts in the tail now (at most a segment's worth). */
  reserve(capacity: number): void {
    this.tail.reserve(Math.min(capacity, this.segmentSize));
  }

  /**
   * Removes expert `id`: from the tail (its last expert takes the row), or by clearing its live
   * flag in its segment. False when the pool has no such expert.
   */
  remove(id: number): boolean {
    const at = this.#sealed.get(id);
    if (at === undefined) return this.tail.swapRemove(id);
    at.segment.kill(at.row);
    this.#sealed.delete(id);
    if (at.segment.liveCount === 0) {
      this.#segments = this.#segments.filter((s) => s !== at.segment);
      void at.segment.remove();
    }
    this.#version++;
    return true;
  }

  /** Removes every expert; segment files are deleted. */
  async clear(): Promise<void> {
    const segments = this.#segments;
    this.#segments = [];
    this.#sealed.clear();
    this.tail.clear();
    if (segments.length > 0) this.#version++;
    for (const s of segments) await s.remove();
  }

  /** A copy of expert `id` (read from its segment file when sealed); throws naming an unknown id. */
  async get(id: number): Promise<Expert> {
    const at = this.#sealed.get(id);
    if (at !== undefined) return await at.segment.read(at.row);
    if (!this.tail.has(id)) throw new Error(`SegmentedPool.get: no expert with id ${id}`);
    return this.tail.get(id);
  }

  /**
   * A copy of the expert in slot `slot` of the routing graph: every segment's rows (undone
   * ones included) in order, then the tail's rows. Throws for a slot out of range.
   */
  async slotExpert(slot: number): Promise<Expert> {
    let s = slot;
    for (const segment of this.#segments) {
      if (s < segment.size) return await segment.read(s);
      s -= segment.size;
    }
    if (!(Number.isInteger(s) && s >= 0 && s < this.tail.size)) {
      throw new Error(`SegmentedPool.slotExpert: no slot ${slot}`);
    }
    return this.tail.get(this.tail.ids[s]);
  }

  /** The tail's experts as tensors over its memory (valid until the next change). */
  tailViews(): PoolViews {
    return this.tail.views();
  }

  /**
   * Checks every segment file against what was written (`Segment.check`: cheap unless a file's
   * identity changed); throws naming the file that changed.
   */
  async check(): Promise<void> {
    for (const s of this.#segments) await s.check();
  }

  /** Empties the pool and deletes its segment directory. */
  async release(): Promise<void> {
    await this.clear();
    if (this.#dir !== null) await Deno.remove(this.#dir, { recursive: true }).catch(() => {});
    this.#dir = null;
  }

  async #seal(): Promise<void> {
    this.#dir ??= await Deno.makeTempDir({ dir: this.#parentDir, prefix: "liveedit-segments-" });
    const n = this.#sequence++;
    const file = path.join(this.#dir, `segment-${String(n).padStart(6, "0")}.safetensors`);
    const v = this.tail.views();
    const ids = this.tail.ids;
    const segment = await Segment.write(file, this.dims, ids, {
      eqr: v.eqr.data,
      evr: v.evr.data,
      moe_cs: v.moeCs.data,
      moe_rs: v.moeRs.data,
    });
    this.#segments.push(segment);
    ids.forEach((id, row) => this.#sealed.set(id, { segment, row }));
    this.tail.clear();
    this.#version++;
  }
}

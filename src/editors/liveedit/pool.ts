/**
 * The expert pools on the host: one contiguous `Float32Array` per part, `[capacity, e·m]` for
 * `eqr` and `evr`, `[capacity, r·d]` for C and R, grown by doubling so an append is O(1)
 * amortised. Each expert gets an id (the pool's own counter, or one the caller gives, e.g. a
 * repository's edit id); finding an expert's row is O(1). {@linkcode ExpertPool.remove} takes
 * one out keeping the order of the rest (moves every later row);
 * {@linkcode ExpertPool.swapRemove} moves the last row into the freed one instead (O(1)).
 * Either way the filled rows stay contiguous, and {@linkcode ExpertPool.views} hands them to a
 * graph without copying.
 *
 * @example
 * ```ts
 * import { ExpertPool } from "./pool.ts";
 * const pool = new ExpertPool({ eqeN: 1, moduleDim: 2, loraRank: 1, llmMidDim: 2 }, 1);
 * const row = new Float32Array([1, 2]);
 * const a = pool.add({ eqr: row, evr: row, moeC: row, moeR: row });
 * pool.add({ eqr: row, evr: row, moeC: row, moeR: row }); // grows to capacity 2
 * pool.remove(a);
 * if (pool.size !== 1 || pool.capacity !== 2) throw new Error("pool");
 * ```
 *
 * @module
 */
import { Tensor } from "../../tensor/tensor.ts";
import type { EditorDims } from "./config.ts";

/** One expert's parts as flat rows (`eqr`/`evr`: e·m floats, `moeC`/`moeR`: r·d floats). */
export interface Expert {
  /** Editing query representation, `[e, m]` flattened. */
  readonly eqr: Float32Array;
  /** Editing vision representation, `[e, m]` flattened. */
  readonly evr: Float32Array;
  /** First factor C, `[r, d]` flattened. */
  readonly moeC: Float32Array;
  /** Second factor R, `[r, d]` flattened. */
  readonly moeR: Float32Array;
}

/** The filled rows of the pools as tensors over the pools' memory (valid until the next add). */
export interface PoolViews {
  /** `[n, e, m]`. */
  readonly eqr: Tensor<"f32">;
  /** `[n, e, m]`. */
  readonly evr: Tensor<"f32">;
  /** `[n, r, d]`. */
  readonly moeCs: Tensor<"f32">;
  /** `[n, r, d]`. */
  readonly moeRs: Tensor<"f32">;
}

const PARTS = ["eqr", "evr", "moeC", "moeR"] as const;

/** The expert repository's numeric part: contiguous pools with ids. */
export class ExpertPool {
  readonly #dims: Pick<EditorDims, "eqeN" | "moduleDim" | "loraRank" | "llmMidDim">;
  readonly #width: Record<typeof PARTS[number], number>;
  #data: Record<typeof PARTS[number], Float32Array>;
  #ids: number[] = [];
  readonly #rows = new Map<number, number>();
  #nextId = 0;

  /** An empty pool for experts of `dims`, with room for `capacity` (≥ 1) before growing. */
  constructor(
    dims: Pick<EditorDims, "eqeN" | "moduleDim" | "loraRank" | "llmMidDim">,
    capacity = 16,
  ) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) {
      throw new Error(`ExpertPool: capacity must be an integer >= 1, got ${capacity}`);
    }
    this.#dims = dims;
    const em = dims.eqeN * dims.moduleDim, rd = dims.loraRank * dims.llmMidDim;
    this.#width = { eqr: em, evr: em, moeC: rd, moeR: rd };
    this.#data = {
      eqr: new Float32Array(capacity * em),
      evr: new Float32Array(capacity * em),
      moeC: new Float32Array(capacity * rd),
      moeR: new Float32Array(capacity * rd),
    };
  }

  /** Number of experts. */
  get size(): number {
    return this.#ids.length;
  }

  /** Experts that fit before the pools grow. */
  get capacity(): number {
    return this.#data.eqr.length / this.#width.eqr;
  }

  /** Ids of the experts, in pool order. */
  get ids(): readonly number[] {
    return [...this.#ids];
  }

  /** True when the pool holds expert `id`. */
  has(id: number): boolean {
    return this.#rows.has(id);
  }

  /**
   * Appends an expert (copied in) under `id` (default: one above every id so far) and returns
   * the id. Throws naming a part of the wrong size, or an `id` that is not a non-negative
   * integer or is already in the pool.
   */
  add(expert: Expert, id: number = this.#nextId): number {
    if (!Number.isSafeInteger(id) || id < 0 || this.#rows.has(id)) {
      throw new Error(
        `ExpertPool.add: id ${id} ${
          this.#rows.has(id) ? "is already in the pool" : "is not an integer >= 0"
        }`,
      );
    }
    for (const k of PARTS) {
      if (expert[k].length !== this.#width[k]) {
        throw new Error(
          `ExpertPool.add: ${k} has ${expert[k].length} floats, expected ${this.#width[k]}`,
        );
      }
    }
    const n = this.size;
    if (n === this.capacity) this.#grow(2 * n);
    for (const k of PARTS) this.#data[k].set(expert[k], n * this.#width[k]);
    this.#nextId = Math.max(this.#nextId, id + 1);
    this.#ids.push(id);
    this.#rows.set(id, n);
    return id;
  }

  /**
   * Makes room for at least `capacity` experts now (one allocation instead of several
   * doublings, e.g. before filling the pool from a repository of known size).
   */
  reserve(capacity: number): void {
    if (capacity > this.capacity) this.#grow(capacity);
  }

  /** Removes expert `id`, keeping the order of the others (O(n)); false when there is none. */
  remove(id: number): boolean {
    const row = this.#rows.get(id);
    if (row === undefined) return false;
    const n = this.size;
    for (const k of PARTS) {
      const w = this.#width[k];
      this.#data[k].copyWithin(row * w, (row + 1) * w, n * w);
    }
    this.#ids.splice(row, 1);
    this.#rows.delete(id);
    for (let r = row; r < n - 1; r++) this.#rows.set(this.#ids[r], r);
    return true;
  }

  /**
   * Removes expert `id` by moving the last expert into its row (O(1): one row copied per
   * part); the order of the others changes only in that the last one takes `id`'s place.
   * False when there is no such id.
   */
  swapRemove(id: number): boolean {
    const row = this.#rows.get(id);
    if (row === undefined) return false;
    const last = this.size - 1;
    if (row !== last) {
      for (const k of PARTS) {
        const w = this.#width[k];
        this.#data[k].copyWithin(row * w, last * w, (last + 1) * w);
      }
      const moved = this.#ids[last];
      this.#ids[row] = moved;
      this.#rows.set(moved, row);
    }
    this.#ids.pop();
    this.#rows.delete(id);
    return true;
  }

  /** Removes every expert (capacity is kept). */
  clear(): void {
    this.#ids = [];
    this.#rows.clear();
  }

  /** A copy of expert `id`'s parts; throws when there is no such id. */
  get(id: number): Expert {
    const row = this.#rows.get(id);
    if (row === undefined) throw new Error(`ExpertPool.get: no expert with id ${id}`);
    const part = (k: typeof PARTS[number]) =>
      this.#data[k].slice(row * this.#width[k], (row + 1) * this.#width[k]);
    return { eqr: part("eqr"), evr: part("evr"), moeC: part("moeC"), moeR: part("moeR") };
  }

  /** The filled rows as tensors over the pool memory (no copy). */
  views(): PoolViews {
    const n = this.size, { eqeN: e, moduleDim: m, loraRank: r, llmMidDim: d } = this.#dims;
    const view = (k: typeof PARTS[number], shape: number[]) =>
      new Tensor("f32", shape, this.#data[k].subarray(0, n * this.#width[k]));
    return {
      eqr: view("eqr", [n, e, m]),
      evr: view("evr", [n, e, m]),
      moeCs: view("moeC", [n, r, d]),
      moeRs: view("moeR", [n, r, d]),
    };
  }

  #grow(capacity: number): void {
    for (const k of PARTS) {
      const next = new Float32Array(capacity * this.#width[k]);
      next.set(this.#data[k].subarray(0, this.size * this.#width[k]));
      this.#data[k] = next;
    }
  }
}

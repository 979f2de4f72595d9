/**
 * A sealed segment of the expert pool: a fixed number of experts written once into their own
 * safetensors file, which the routing session references as external initializers (ONNX
 * Runtime memory-maps it: the experts are neither copied into the session nor fed on each
 * run). The file holds `eqr` and `evr` `[S, e·m]` and `moe_cs` and `moe_rs` `[S, r·d]` — the
 * shapes the routing graph reads them in, so nothing reshapes (and so copies) them — and in
 * its metadata the experts' ids, the dims and the SHA-256 of the four tensors' bytes.
 *
 * A segment never changes after it is written: undoing one of its experts clears that row's
 * `live` flag, which the routing graph applies as a mask. {@linkcode Segment.check} finds a
 * file changed on disk (its size, inode or modification time differ from when it was written,
 * and then its checksum); {@linkcode Segment.verify} always compares the checksum.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { ExternalData } from "../../graph/ir.ts";
import { SafetensorsFile, writeSafetensors } from "../../io/safetensors.ts";
import { Tensor } from "../../tensor/tensor.ts";
import type { Expert } from "./pool.ts";
import type { ExpertDims } from "./repository/types.ts";

/** The four parts of an expert, as named in a segment file. */
export const SEGMENT_PARTS = ["eqr", "evr", "moe_cs", "moe_rs"] as const;

/** A part of a segment. */
export type SegmentPart = typeof SEGMENT_PARTS[number];

const EXPERT_KEY = { eqr: "eqr", evr: "evr", moe_cs: "moeC", moe_rs: "moeR" } as const;

/** The `format` of a segment file's metadata. */
export const SEGMENT_FORMAT = "liveedit-segment";

interface Identity {
  readonly ino: number | null;
  readonly size: number;
  readonly mtime: number;
}

async function identityOf(file: string): Promise<Identity> {
  const st = await Deno.stat(file);
  return { ino: st.ino, size: st.size, mtime: st.mtime?.getTime() ?? 0 };
}

function sameIdentity(a: Identity, b: Identity): boolean {
  return a.ino === b.ino && a.size === b.size && a.mtime === b.mtime;
}

function bytesOf(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Floats per expert of each part. */
function widths(dims: ExpertDims): Record<SegmentPart, number> {
  const em = dims.e * dims.m, rd = dims.r * dims.d;
  return { eqr: em, evr: em, moe_cs: rd, moe_rs: rd };
}

/** One sealed segment (see the module docs). */
export class Segment {
  /** The segment file. */
  readonly file: string;
  /** Ids of its experts, by row. */
  readonly ids: readonly number[];
  /** Expert dims. */
  readonly dims: ExpertDims;
  /** Where each part's bytes are in the file. */
  readonly parts: Readonly<Record<SegmentPart, ExternalData>>;
  readonly #sha256: string;
  readonly #live: Uint8Array;
  #liveCount: number;
  #identity: Identity;

  private constructor(
    file: string,
    ids: readonly number[],
    dims: ExpertDims,
    parts: Record<SegmentPart, ExternalData>,
    sha256: string,
    identity: Identity,
  ) {
    this.file = file;
    this.ids = ids;
    this.dims = dims;
    this.parts = parts;
    this.#sha256 = sha256;
    this.#live = new Uint8Array(ids.length).fill(1);
    this.#liveCount = ids.length;
    this.#identity = identity;
  }

  /**
   * Writes the experts `ids` (rows `0..ids.length` of each part in `data`, flat, as an
   * `ExpertPool`'s views hold them) to `file` atomically and returns the segment.
   */
  static async write(
    file: string,
    dims: ExpertDims,
    ids: readonly number[],
    data: Readonly<Record<SegmentPart, Float32Array>>,
  ): Promise<Segment> {
    const w = widths(dims), n = ids.length;
    const hash = createHash("sha256");
    const tensors: Record<string, Tensor> = {};
    for (const k of SEGMENT_PARTS) {
      const rows = data[k].subarray(0, n * w[k]);
      if (rows.length !== n * w[k]) {
        throw new Error(
          `Segment.write ${file}: ${k} has ${data[k].length} floats, expected ${n * w[k]}`,
        );
      }
      hash.update(bytesOf(rows));
      tensors[k] = new Tensor("f32", [n, w[k]], rows);
    }
    const sha256 = hash.digest("hex");
    await writeSafetensors(file, tensors, {
      format: SEGMENT_FORMAT,
      ids: JSON.stringify(ids),
      dims: JSON.stringify(dims),
      sha256,
    });
    const f = await SafetensorsFile.open(file);
    try {
      const parts = {} as Record<SegmentPart, ExternalData>;
      for (const k of SEGMENT_PARTS) {
        const info = f.info(k);
        parts[k] = { path: file, offset: info.fileOffset, length: info.byteLength };
      }
      return new Segment(file, [...ids], dims, parts, sha256, await identityOf(file));
    } finally {
      f.close();
    }
  }

  /** Number of rows (experts written, undone or not). */
  get size(): number {
    return this.ids.length;
  }

  /** Number of experts not undone. */
  get liveCount(): number {
    return this.#liveCount;
  }

  /** Whether row `row` is not undone. */
  isLive(row: number): boolean {
    return this.#live[row] === 1;
  }

  /** Marks row `row` undone; false when it already was. */
  kill(row: number): boolean {
    if (this.#live[row] !== 1) return false;
    this.#live[row] = 0;
    this.#liveCount--;
    return true;
  }

  /** The `live` flags `[S]` (1 = live), or null when every row is live. */
  liveMask(): Uint8Array | null {
    return this.#liveCount === this.size ? null : this.#live.slice();
  }

  /**
   * Throws naming the file when it changed on disk since it was written: its size, inode or
   * modification time differ and its checksum does not match (same checksum: accepted).
   */
  async check(): Promise<void> {
    let now: Identity;
    try {
      now = await identityOf(this.file);
    } catch (error) {
      throw new Error(`segment file ${this.file} cannot be read: ${(error as Error).message}`);
    }
    if (sameIdentity(now, this.#identity)) return;
    await this.verify();
    this.#identity = now;
  }

  /**
   * Reads the whole file and throws naming it when its header does not describe this segment
   * (ids, dims, shapes) or the SHA-256 of its tensors differs from the one written.
   */
  async verify(): Promise<void> {
    const bad = (why: string) =>
      new Error(`segment file ${this.file} changed on disk: ${why}; it was written by this editor`);
    let f: SafetensorsFile;
    try {
      f = await SafetensorsFile.open(this.file);
    } catch (error) {
      throw bad((error as Error).message);
    }
    try {
      const meta = f.metadata;
      if (meta.ids !== JSON.stringify(this.ids) || meta.dims !== JSON.stringify(this.dims)) {
        throw bad("its ids or dims differ");
      }
      const w = widths(this.dims), hash = createHash("sha256");
      for (const k of SEGMENT_PARTS) {
        if (!f.has(k)) throw bad(`tensor '${k}' is missing`);
        const t = await f.read(k);
        if (t.dtype !== "f32" || t.shape.join() !== `${this.size},${w[k]}`) {
          throw bad(`tensor '${k}' is ${t.dtype}[${t.shape}], expected f32[${this.size},${w[k]}]`);
        }
        hash.update(bytesOf(t.data as Float32Array));
      }
      const sum = hash.digest("hex");
      if (sum !== this.#sha256) throw bad(`its checksum is ${sum}, expected ${this.#sha256}`);
    } finally {
      f.close();
    }
  }

  /** A copy of the expert in row `row`, read from the file. */
  async read(row: number): Promise<Expert> {
    const w = widths(this.dims);
    const file = await Deno.open(this.file, { read: true });
    try {
      const out = {} as Record<keyof Expert, Float32Array>;
      for (const k of SEGMENT_PARTS) {
        const bytes = new Uint8Array(w[k] * 4);
        await file.seek(this.parts[k].offset + row * bytes.length, Deno.SeekMode.Start);
        let done = 0;
        while (done < bytes.length) {
          const n = await file.read(bytes.subarray(done));
          if (n === null) {
            throw new Error(`segment file ${this.file} ended early (changed on disk?)`);
          }
          done += n;
        }
        out[EXPERT_KEY[k]] = new Float32Array(bytes.buffer);
      }
      return out;
    } finally {
      file.close();
    }
  }

  /** Deletes the file (a session that maps it keeps its pages until it is released). */
  async remove(): Promise<void> {
    await Deno.remove(this.file).catch(() => {});
  }
}

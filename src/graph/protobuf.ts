/**
 * A small protocol-buffers wire-format writer (encoding only), enough to emit ONNX models.
 *
 * Bytes go into one growable buffer. A nested message is written in place: one byte is
 * reserved for its length, the body is written after it, and the body is moved right only when
 * its length needs more than one varint byte. Field order is exactly the call order, so the
 * same calls always produce the same bytes.
 *
 * @example
 * ```ts
 * import { ProtoWriter } from "./protobuf.ts";
 * const w = new ProtoWriter();
 * w.int64(1, 150);
 * w.message(2, (m) => m.string(1, "hi"));
 * const bytes = w.finish(); // 08 96 01 12 04 0a 02 68 69
 * if (bytes.length !== 9) throw new Error("size");
 * ```
 *
 * @module
 */

/** Wire type of a field: varint. */
export const WIRE_VARINT = 0;
/** Wire type of a field: 64-bit little-endian. */
export const WIRE_FIXED64 = 1;
/** Wire type of a field: length-delimited (strings, bytes, messages, packed repeated). */
export const WIRE_LEN = 2;
/** Wire type of a field: 32-bit little-endian. */
export const WIRE_FIXED32 = 5;

const TWO_32 = 4294967296;
const encoder = new TextEncoder();

/**
 * Appends protobuf fields to a growable byte buffer. Integer fields take JS numbers (safe
 * integers, negative ones are written as 64-bit two's complement like `int64`) or bigints.
 */
export class ProtoWriter {
  #buf: Uint8Array;
  #view: DataView;
  #pos = 0;

  /** Creates a writer with `capacity` bytes preallocated (it grows as needed). */
  constructor(capacity = 1024) {
    this.#buf = new Uint8Array(Math.max(16, capacity));
    this.#view = new DataView(this.#buf.buffer);
  }

  /** Number of bytes written so far. */
  get length(): number {
    return this.#pos;
  }

  /** Returns the bytes written (a copy trimmed to {@linkcode length}). */
  finish(): Uint8Array {
    return this.#buf.slice(0, this.#pos);
  }

  /** Writes a field key (`field << 3 | wireType`). */
  tag(field: number, wireType: number): void {
    if (!Number.isInteger(field) || field < 1 || field > 0x1fffffff) {
      throw new Error(`protobuf: invalid field number ${field}`);
    }
    this.#varint32(((field << 3) | wireType) >>> 0);
  }

  /** Writes a bare varint (no key): `int64`/`uint64`/`int32` encoding. */
  varint(value: number | bigint): void {
    if (typeof value === "number" && value >= 0 && value <= 0xffffffff && Number.isInteger(value)) {
      this.#varint32(value);
      return;
    }
    let lo: number;
    let hi: number;
    if (typeof value === "bigint") {
      const u = BigInt.asUintN(64, value);
      if (u !== value && BigInt.asIntN(64, value) !== value) {
        throw new Error(`protobuf: integer ${value} does not fit in 64 bits`);
      }
      lo = Number(u & 0xffffffffn);
      hi = Number(u >> 32n);
    } else {
      if (!Number.isSafeInteger(value)) {
        throw new Error(`protobuf: ${value} is not a safe integer`);
      }
      const magnitude = Math.abs(value);
      lo = magnitude % TWO_32;
      hi = Math.floor(magnitude / TWO_32);
      if (value < 0) {
        // Two's complement of (hi, lo): invert and add one.
        lo = (~lo >>> 0) + 1;
        hi = ~hi >>> 0;
        if (lo === TWO_32) {
          lo = 0;
          hi = (hi + 1) >>> 0;
        }
      }
    }
    this.#varint64(lo, hi);
  }

  /** Writes an `int64`/`uint64`/`int32`/enum field. */
  int64(field: number, value: number | bigint): void {
    this.tag(field, WIRE_VARINT);
    this.varint(value);
  }

  /** Writes a `float` field (fixed 32-bit). */
  float(field: number, value: number): void {
    this.tag(field, WIRE_FIXED32);
    this.#ensure(4);
    this.#view.setFloat32(this.#pos, value, true);
    this.#pos += 4;
  }

  /** Writes a `double` field (fixed 64-bit). */
  double(field: number, value: number): void {
    this.tag(field, WIRE_FIXED64);
    this.#ensure(8);
    this.#view.setFloat64(this.#pos, value, true);
    this.#pos += 8;
  }

  /** Writes a `fixed32` field (unsigned 32-bit little-endian). */
  fixed32(field: number, value: number): void {
    this.tag(field, WIRE_FIXED32);
    this.#ensure(4);
    this.#view.setUint32(this.#pos, value >>> 0, true);
    this.#pos += 4;
  }

  /** Writes a `fixed64` field (unsigned 64-bit little-endian). */
  fixed64(field: number, value: number | bigint): void {
    this.tag(field, WIRE_FIXED64);
    this.#ensure(8);
    this.#view.setBigUint64(this.#pos, BigInt.asUintN(64, BigInt(value)), true);
    this.#pos += 8;
  }

  /** Writes a `string` field as UTF-8. */
  string(field: number, value: string): void {
    this.tag(field, WIRE_LEN);
    // UTF-8 needs at most 3 bytes per UTF-16 code unit.
    const max = value.length * 3;
    if (max < 128) {
      this.#ensure(1 + max);
      const { written } = encoder.encodeInto(value, this.#buf.subarray(this.#pos + 1));
      this.#buf[this.#pos] = written;
      this.#pos += 1 + written;
    } else {
      this.#lengthAndBytes(encoder.encode(value));
    }
  }

  /** Writes a `bytes` field. */
  bytes(field: number, value: Uint8Array): void {
    this.tag(field, WIRE_LEN);
    this.#lengthAndBytes(value);
  }

  #lengthAndBytes(value: Uint8Array): void {
    this.#varint32(value.length);
    this.#ensure(value.length);
    this.#buf.set(value, this.#pos);
    this.#pos += value.length;
  }

  /** Writes a nested message: `body` writes the message's fields into this writer. */
  message(field: number, body: (w: ProtoWriter) => void): void {
    this.tag(field, WIRE_LEN);
    this.#delimited(() => body(this));
  }

  /** Writes a packed repeated `int64`/`int32` field (nothing when `values` is empty). */
  packedVarints(field: number, values: ArrayLike<number | bigint>): void {
    if (values.length === 0) return;
    this.tag(field, WIRE_LEN);
    this.#delimited(() => {
      for (let i = 0; i < values.length; i++) this.varint(values[i]);
    });
  }

  /** Writes a packed repeated `float` field (nothing when `values` is empty). */
  packedFloats(field: number, values: ArrayLike<number>): void {
    if (values.length === 0) return;
    this.tag(field, WIRE_LEN);
    this.#varint32(values.length * 4);
    this.#ensure(values.length * 4);
    for (let i = 0; i < values.length; i++) {
      this.#view.setFloat32(this.#pos, values[i], true);
      this.#pos += 4;
    }
  }

  /** Runs `write` and prefixes what it wrote with its varint length. */
  #delimited(write: () => void): void {
    this.#ensure(1);
    const lenAt = this.#pos;
    this.#pos += 1;
    write();
    const size = this.#pos - lenAt - 1;
    const extra = varintSize(size) - 1;
    if (extra > 0) {
      this.#ensure(extra);
      this.#buf.copyWithin(lenAt + 1 + extra, lenAt + 1, this.#pos);
      this.#pos += extra;
    }
    const end = this.#pos;
    this.#pos = lenAt;
    this.#varint32(size);
    this.#pos = end;
  }

  #varint32(value: number): void {
    this.#ensure(5);
    const buf = this.#buf;
    let v = value >>> 0;
    while (v >= 0x80) {
      buf[this.#pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    buf[this.#pos++] = v;
  }

  #varint64(lo: number, hi: number): void {
    if (hi === 0) {
      this.#varint32(lo);
      return;
    }
    this.#ensure(10);
    const buf = this.#buf;
    // Low 28 bits, 7 at a time.
    for (let i = 0; i < 4; i++) {
      buf[this.#pos++] = (lo & 0x7f) | 0x80;
      lo >>>= 7;
    }
    // Bits 28..34: 4 from lo, 3 from hi; then the rest of hi.
    const mid = (lo | (hi << 4)) & 0x7f;
    hi >>>= 3;
    if (hi === 0) {
      buf[this.#pos++] = mid;
      return;
    }
    buf[this.#pos++] = mid | 0x80;
    while (hi >= 0x80) {
      buf[this.#pos++] = (hi & 0x7f) | 0x80;
      hi >>>= 7;
    }
    buf[this.#pos++] = hi;
  }

  #ensure(extra: number): void {
    const need = this.#pos + extra;
    if (need <= this.#buf.length) return;
    let cap = this.#buf.length * 2;
    while (cap < need) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.#buf.subarray(0, this.#pos));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }
}

/** Number of bytes of the varint encoding of a non-negative 32-bit `value`. */
export function varintSize(value: number): number {
  if (value < 0x80) return 1;
  if (value < 0x4000) return 2;
  if (value < 0x200000) return 3;
  if (value < 0x10000000) return 4;
  return 5;
}

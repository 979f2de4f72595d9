/**
 * Reading and writing safetensors files. {@linkcode SafetensorsFile} opens a file lazily (only
 * the header is read at open; each tensor is read from its own byte range on request), and
 * reports absolute file offsets so weights can be referenced zero-copy as ONNX external data.
 * {@linkcode writeSafetensors} writes a file atomically.
 *
 * @module
 */
import { type DType, DTYPE_BYTES } from "../tensor/dtype.ts";
import { bf16BitsToF32, f16BitsToF32 } from "../tensor/half.ts";
import { Tensor } from "../tensor/tensor.ts";
import { writeFileAtomic } from "./atomic.ts";
import {
  encodeHeader,
  type HeaderEntry,
  parseHeader,
  parseHeaderLength,
  SafetensorsError,
  type SafetensorsTensorInfo,
} from "./safetensors/header.ts";
import { didYouMean } from "./safetensors/suggest.ts";

export {
  MAX_HEADER_BYTES,
  SAFETENSORS_DTYPE_NAMES,
  SafetensorsError,
  type SafetensorsTensorInfo,
} from "./safetensors/header.ts";

/**
 * A safetensors file opened for lazy reading. Opening reads only the 8-byte header length and
 * the JSON header, which is validated strictly; {@linkcode SafetensorsFile.read} then reads
 * just the requested tensor's bytes. Keeps the file open until {@linkcode SafetensorsFile.close}.
 *
 * @example
 * ```ts
 * import { SafetensorsFile, writeSafetensors } from "./safetensors.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * const dir = await Deno.makeTempDir();
 * await writeSafetensors(`${dir}/w.safetensors`, {
 *   w: new Tensor("f32", [2], new Float32Array([1, 2])),
 * });
 * const file = await SafetensorsFile.open(`${dir}/w.safetensors`);
 * const w = await file.read("w");
 * if (w.data[1] !== 2 || file.info("w").fileOffset % 8 !== 0) throw new Error("read");
 * file.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class SafetensorsFile {
  /** Path the file was opened from. */
  readonly path: string;
  /** Length in bytes of the JSON header (the data section starts at `8 + headerLength`). */
  readonly headerLength: number;
  /** The header's `__metadata__` map (empty when absent). */
  readonly metadata: Readonly<Record<string, string>>;
  readonly #file: Deno.FsFile;
  readonly #tensors: readonly SafetensorsTensorInfo[];
  readonly #byName: ReadonlyMap<string, SafetensorsTensorInfo>;
  /** Reads share one file position, so they run one after another. */
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(
    path: string,
    file: Deno.FsFile,
    headerLength: number,
    metadata: Readonly<Record<string, string>>,
    tensors: readonly SafetensorsTensorInfo[],
  ) {
    this.path = path;
    this.#file = file;
    this.headerLength = headerLength;
    this.metadata = Object.freeze(metadata);
    this.#tensors = tensors;
    this.#byName = new Map(tensors.map((t) => [t.name, t]));
  }

  /**
   * Opens `path` and reads and validates its header (never the data). Throws a
   * {@linkcode SafetensorsError} naming the file (and the tensor at fault) when the file cannot
   * be opened, is truncated, or its header is invalid.
   */
  static async open(path: string): Promise<SafetensorsFile> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { read: true });
    } catch (error) {
      throw new SafetensorsError(path, undefined, `cannot open: ${message(error)}`, {
        cause: error,
      });
    }
    try {
      const stat = await file.stat();
      if (!stat.isFile) throw new SafetensorsError(path, undefined, "not a regular file");
      const prefix = await readAt(file, path, undefined, 0, Math.min(8, stat.size));
      const headerLength = parseHeaderLength(path, prefix, stat.size);
      const headerBytes = await readAt(file, path, undefined, 8, headerLength);
      const dataStart = 8 + headerLength;
      const { metadata, tensors } = parseHeader(
        path,
        headerBytes,
        dataStart,
        stat.size - dataStart,
      );
      return new SafetensorsFile(path, file, headerLength, metadata, tensors);
    } catch (error) {
      file.close();
      throw error;
    }
  }

  /** All tensors, ordered by their offset in the file. */
  tensors(): SafetensorsTensorInfo[] {
    return [...this.#tensors];
  }

  /** True when the file has a tensor called `name`. */
  has(name: string): boolean {
    return this.#byName.has(name);
  }

  /**
   * Where tensor `name` lives; throws naming the file and `name` (with close names, if any)
   * when there is no such tensor.
   */
  info(name: string): SafetensorsTensorInfo {
    const info = this.#byName.get(name);
    if (info === undefined) {
      throw new SafetensorsError(
        this.path,
        name,
        `no such tensor among ${this.#tensors.length}${didYouMean(name, this.#byName.keys())}`,
      );
    }
    return info;
  }

  /** Reads tensor `name` (only its byte range) into a new {@linkcode Tensor} of its dtype. */
  async read(name: string): Promise<Tensor> {
    const info = this.info(name);
    const run = this.#queue.then(() => {
      if (this.#closed) throw new SafetensorsError(this.path, name, "read after close()");
      return readAt(this.#file, this.path, name, info.fileOffset, info.byteLength);
    });
    this.#queue = run.catch(() => {});
    return decode(this.path, info, await run);
  }

  /**
   * Reads tensor `name` converted to float32: f16 and bf16 exactly, f64 rounded to nearest,
   * f32 as is. Throws for integer and bool tensors.
   */
  async readAs(name: string, dtype: "f32"): Promise<Tensor<"f32">> {
    if (dtype !== "f32") {
      throw new SafetensorsError(this.path, name, `readAs supports "f32" only, got ${dtype}`);
    }
    const t = await this.read(name);
    switch (t.dtype) {
      case "f32":
        return t as Tensor<"f32">;
      case "f64":
        return new Tensor("f32", t.shape, Float32Array.from(t.data as Float64Array));
      case "f16":
      case "bf16": {
        const decodeBits = t.dtype === "f16" ? f16BitsToF32 : bf16BitsToF32;
        const src = t.data as Uint16Array;
        const out = new Float32Array(src.length);
        for (let i = 0; i < src.length; i++) out[i] = decodeBits(src[i]);
        return new Tensor("f32", t.shape, out);
      }
      default:
        throw new SafetensorsError(
          this.path,
          name,
          `readAs("f32") converts float tensors only; this one is ${t.dtype}`,
        );
    }
  }

  /** Reads every tensor, in file order. Meant for small files such as test fixtures. */
  async readAll(): Promise<Record<string, Tensor>> {
    const entries: [string, Tensor][] = [];
    for (const t of this.#tensors) entries.push([t.name, await this.read(t.name)]);
    return Object.fromEntries(entries);
  }

  /** Closes the file; later reads fail. Calling it again does nothing. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#file.close();
  }
}

/**
 * Writes `tensors` (and optional string `metadata`) to `path` as safetensors, atomically (see
 * {@linkcode writeFileAtomic}), streaming each tensor's bytes without building one buffer.
 *
 * Layout: tensors are stored by element size, largest first, then by name (UTF-16 code unit
 * order), and the header is padded with spaces to a multiple of 8 bytes; so every tensor
 * starts at a file offset that is a multiple of its element size. `bool` is stored as bytes
 * 0/1 (any non-zero byte becomes 1). Throws naming `path` and the tensor for the reserved name
 * `__metadata__`, values that are not {@linkcode Tensor}s, or non-string metadata.
 *
 * @example
 * ```ts
 * import { writeSafetensors } from "./safetensors.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * const dir = await Deno.makeTempDir();
 * await writeSafetensors(`${dir}/a.safetensors`, {
 *   ids: new Tensor("i64", [2], new BigInt64Array([1n, 2n])),
 * }, { format: "pt" });
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeSafetensors(
  path: string,
  tensors: Readonly<Record<string, Tensor>>,
  metadata?: Readonly<Record<string, string>>,
): Promise<void> {
  assertLittleEndianHost(path);
  if (metadata !== undefined) {
    for (const [key, value] of Object.entries(metadata)) {
      if (typeof value !== "string") {
        throw new SafetensorsError(
          path,
          undefined,
          `metadata[${JSON.stringify(key)}] must be a string, got ${typeof value}`,
        );
      }
    }
  }
  const list = Object.entries(tensors).map(([name, t]) => {
    if (name === "__metadata__") {
      throw new SafetensorsError(path, name, "the name __metadata__ is reserved");
    }
    if (!(t instanceof Tensor)) throw new SafetensorsError(path, name, "value is not a Tensor");
    return { name, tensor: t };
  });
  list.sort((a, b) =>
    DTYPE_BYTES[b.tensor.dtype] - DTYPE_BYTES[a.tensor.dtype] ||
    (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
  );
  const entries: HeaderEntry[] = list.map(({ name, tensor }) => ({
    name,
    dtype: tensor.dtype,
    shape: tensor.shape,
    byteLength: tensor.data.byteLength,
  }));
  const header = encodeHeader(entries, metadata);
  await writeFileAtomic(path, async (write) => {
    await write(header);
    for (const { tensor } of list) await write(tensorBytes(tensor));
  });
}

/** The little-endian bytes of `t`'s data (a view, except for bool, which is normalized to 0/1). */
function tensorBytes(t: Tensor): Uint8Array {
  const d = t.data;
  const bytes = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  if (t.dtype === "bool" && bytes.some((b) => b > 1)) return bytes.map((b) => b !== 0 ? 1 : 0);
  return bytes;
}

/** Wraps `bytes` (a fresh buffer of exactly `info.byteLength` bytes) as a tensor. */
function decode(path: string, info: SafetensorsTensorInfo, bytes: Uint8Array): Tensor {
  assertLittleEndianHost(path);
  const n = info.byteLength / DTYPE_BYTES[info.dtype];
  const buf = bytes.buffer as ArrayBuffer;
  switch (info.dtype as DType) {
    case "f32":
      return new Tensor("f32", info.shape, new Float32Array(buf, 0, n));
    case "f64":
      return new Tensor("f64", info.shape, new Float64Array(buf, 0, n));
    case "f16":
      return new Tensor("f16", info.shape, new Uint16Array(buf, 0, n));
    case "bf16":
      return new Tensor("bf16", info.shape, new Uint16Array(buf, 0, n));
    case "i64":
      return new Tensor("i64", info.shape, new BigInt64Array(buf, 0, n));
    case "i32":
      return new Tensor("i32", info.shape, new Int32Array(buf, 0, n));
    case "u8":
      return new Tensor("u8", info.shape, bytes);
    case "bool": {
      const bad = bytes.findIndex((b) => b > 1);
      if (bad >= 0) {
        throw new SafetensorsError(
          path,
          info.name,
          `BOOL element ${bad} is byte ${bytes[bad]}, expected 0 or 1`,
        );
      }
      return new Tensor("bool", info.shape, bytes);
    }
  }
}

/**
 * Reads exactly `length` bytes at absolute `position` of `file` into a new buffer; throws
 * naming `path` (and `tensor`) when the file ends first.
 */
async function readAt(
  file: Deno.FsFile,
  path: string,
  tensor: string | undefined,
  position: number,
  length: number,
): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  await file.seek(position, Deno.SeekMode.Start);
  let done = 0;
  while (done < length) {
    const n = await file.read(out.subarray(done));
    if (n === null) {
      throw new SafetensorsError(
        path,
        tensor,
        `file ended after ${done} of ${length} bytes at offset ${position} (truncated or changed since it was opened?)`,
      );
    }
    done += n;
  }
  return out;
}

const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function assertLittleEndianHost(path: string): void {
  if (!HOST_IS_LITTLE_ENDIAN) {
    throw new SafetensorsError(path, undefined, "safetensors I/O needs a little-endian host");
  }
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * The safetensors header: the dtype names, strict parsing and validation of the JSON header,
 * and encoding a header for writing.
 *
 * File layout (all integers little-endian): an 8-byte unsigned header length `N`, `N` bytes of
 * UTF-8 JSON (`{"__metadata__": {...}, name: {dtype, shape, data_offsets: [begin, end]}}`,
 * possibly padded with trailing spaces), then the data section; offsets are relative to its
 * start, byte `8 + N` of the file.
 *
 * @module
 */
import { type DType, DTYPE_BYTES } from "../../tensor/dtype.ts";
import { isPlainObject } from "../json.ts";

/** Largest header accepted, in bytes (the reference implementation's limit). */
export const MAX_HEADER_BYTES = 100_000_000;

/** The safetensors dtype name for each of our dtypes. */
export const SAFETENSORS_DTYPE_NAMES: Readonly<Record<DType, string>> = {
  f64: "F64",
  f32: "F32",
  f16: "F16",
  bf16: "BF16",
  i64: "I64",
  i32: "I32",
  u8: "U8",
  bool: "BOOL",
};

const FROM_SAFETENSORS: ReadonlyMap<string, DType> = new Map(
  Object.entries(SAFETENSORS_DTYPE_NAMES).map(([ours, theirs]) => [theirs, ours as DType]),
);

/** An error about a safetensors file, naming the file and, where one is at fault, the tensor. */
export class SafetensorsError extends Error {
  /** The file the error is about. */
  readonly file: string;
  /** The tensor at fault, if any. */
  readonly tensor: string | undefined;

  /** Builds the message `<file>: tensor "<tensor>": <problem>` (without the tensor part if none). */
  constructor(file: string, tensor: string | undefined, problem: string, options?: ErrorOptions) {
    super(
      tensor === undefined
        ? `${file}: ${problem}`
        : `${file}: tensor ${JSON.stringify(tensor)}: ${problem}`,
      options,
    );
    this.name = "SafetensorsError";
    this.file = file;
    this.tensor = tensor;
  }
}

/** Where one tensor lives in a safetensors file. */
export interface SafetensorsTensorInfo {
  /** Tensor name (the header key). */
  readonly name: string;
  /** Element type. */
  readonly dtype: DType;
  /** Dimensions, outermost first. */
  readonly shape: readonly number[];
  /** `[begin, end)` byte range relative to the start of the data section. */
  readonly dataOffsets: readonly [number, number];
  /** Absolute byte offset of the tensor's data in the file: `8 + headerLength + begin`. */
  readonly fileOffset: number;
  /** Size of the tensor's data in bytes: `end - begin`. */
  readonly byteLength: number;
}

/** A validated header. */
export interface ParsedHeader {
  /** The `__metadata__` map (empty when absent). */
  readonly metadata: Readonly<Record<string, string>>;
  /** Tensors ordered by their offset in the file. */
  readonly tensors: readonly SafetensorsTensorInfo[];
}

/**
 * Decodes the 8-byte little-endian header length at the start of `file`, checking it against
 * {@linkcode MAX_HEADER_BYTES} and the file's size.
 */
export function parseHeaderLength(file: string, prefix: Uint8Array, fileSize: number): number {
  if (fileSize < 8 || prefix.length < 8) {
    throw new SafetensorsError(
      file,
      undefined,
      `truncated: the file is ${fileSize} bytes, too short for the 8-byte header length`,
    );
  }
  const length = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (length > BigInt(MAX_HEADER_BYTES)) {
    throw new SafetensorsError(
      file,
      undefined,
      `header length ${length} is beyond the ${MAX_HEADER_BYTES}-byte limit (not a safetensors file?)`,
    );
  }
  const n = Number(length);
  if (8 + n > fileSize) {
    throw new SafetensorsError(
      file,
      undefined,
      `header length ${n} runs past the end of the file (${fileSize} bytes): truncated or not a safetensors file`,
    );
  }
  return n;
}

/**
 * Parses and strictly validates the JSON header `bytes` of `file`, whose data section is
 * `dataSize` bytes long and starts at absolute offset `dataStart`. Throws a
 * {@linkcode SafetensorsError} naming the tensor for: invalid UTF-8 or JSON, a non-object
 * header or entry, unknown fields, an unsupported dtype, a bad shape, `data_offsets` that are
 * not `[begin, end]` integers with `begin <= end`, a byte length other than
 * `prod(shape) * dtype size`, offsets beyond the end of the file, tensors that do not tile the
 * data section exactly (an overlap, a hole, or bytes after the last tensor; a header without
 * tensors must have no data; a name given twice, whose first entry's bytes are then left over,
 * is named as a duplicate), and a `__metadata__` that is not a string-to-string map.
 */
export function parseHeader(
  file: string,
  bytes: Uint8Array,
  dataStart: number,
  dataSize: number,
): ParsedHeader {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (error) {
    throw new SafetensorsError(file, undefined, "header is not valid UTF-8", { cause: error });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new SafetensorsError(file, undefined, `header is not valid JSON: ${reason}`, {
      cause: error,
    });
  }
  if (!isPlainObject(json)) {
    throw new SafetensorsError(file, undefined, `header must be a JSON object, got ${kind(json)}`);
  }
  let metadata: Record<string, string> = {};
  const tensors: SafetensorsTensorInfo[] = [];
  for (const [name, entry] of Object.entries(json)) {
    if (name === "__metadata__") metadata = parseMetadata(file, entry);
    else tensors.push(parseEntry(file, name, entry, dataStart, dataSize));
  }
  tensors.sort((a, b) =>
    a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1]
  );
  try {
    checkTiling(file, tensors, dataSize);
  } catch (error) {
    // JSON keeps the last of two entries of one name: the bytes of the other are left over.
    const twice = duplicateName(text);
    if (twice === undefined) throw error;
    throw new SafetensorsError(
      file,
      twice,
      "duplicate tensor name: the header names it twice, and the data of one entry belongs " +
        "to no tensor",
      { cause: error },
    );
  }
  return { metadata, tensors };
}

/** The first key that occurs twice in the top-level object of the valid JSON `text`. */
function duplicateName(text: string): string | undefined {
  const seen = new Set<string>();
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "{" || c === "[") depth++;
    else if (c === "}" || c === "]") depth--;
    else if (c === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === "\\" ? 2 : 1;
      let next = end + 1;
      while (/[ \t\n\r]/.test(text[next] ?? "")) next++;
      if (depth === 1 && text[next] === ":") {
        const key: string = JSON.parse(text.slice(i, end + 1));
        if (seen.has(key)) return key;
        seen.add(key);
      }
      i = end;
    }
  }
  return undefined;
}

/**
 * Checks that `tensors` (sorted by offset) tile the data section of `dataSize` bytes exactly,
 * as the reference implementation requires: the first starts at 0, each starts where the
 * previous ends, and the last ends at the end of the file. Throws naming the overlap, the hole
 * (bytes no tensor covers) or the extra bytes at the end.
 */
function checkTiling(
  file: string,
  tensors: readonly SafetensorsTensorInfo[],
  dataSize: number,
): void {
  let end = 0;
  let previous: SafetensorsTensorInfo | undefined;
  for (const t of tensors) {
    const [begin] = t.dataOffsets;
    const at = `data_offsets [${t.dataOffsets.join(", ")}]`;
    if (begin < end) {
      throw new SafetensorsError(
        file,
        t.name,
        `${at} overlap tensor ${JSON.stringify(previous!.name)} at [${
          previous!.dataOffsets.join(", ")
        }]`,
      );
    }
    if (begin > end) {
      const after = previous === undefined
        ? "the start of the data section"
        : `tensor ${JSON.stringify(previous.name)}`;
      throw new SafetensorsError(
        file,
        t.name,
        `${at} leave a hole: data bytes [${end}, ${begin}) after ${after} belong to no tensor ` +
          "(bytes inserted, or a tensor missing from the header)",
      );
    }
    end = t.dataOffsets[1];
    previous = t;
  }
  if (end !== dataSize) {
    const extra = dataSize - end;
    throw new SafetensorsError(
      file,
      undefined,
      tensors.length === 0
        ? `the header has no tensors but ${extra} data bytes follow it`
        : `${extra} extra bytes: the data section is ${dataSize} bytes but the tensors end at ` +
          `byte ${end} (bytes [${end}, ${dataSize}) belong to no tensor: appended or inserted)`,
    );
  }
}

function parseMetadata(file: string, entry: unknown): Record<string, string> {
  if (!isPlainObject(entry)) {
    throw new SafetensorsError(
      file,
      undefined,
      `__metadata__ must be an object of strings, got ${kind(entry)}`,
    );
  }
  const entries = Object.entries(entry);
  for (const [key, value] of entries) {
    if (typeof value !== "string") {
      throw new SafetensorsError(
        file,
        undefined,
        `__metadata__[${JSON.stringify(key)}] must be a string, got ${kind(value)}`,
      );
    }
  }
  return Object.fromEntries(entries) as Record<string, string>;
}

function parseEntry(
  file: string,
  name: string,
  entry: unknown,
  dataStart: number,
  dataSize: number,
): SafetensorsTensorInfo {
  const fail = (problem: string) => new SafetensorsError(file, name, problem);
  if (!isPlainObject(entry)) throw fail(`entry must be an object, got ${kind(entry)}`);
  for (const key of Object.keys(entry)) {
    if (key !== "dtype" && key !== "shape" && key !== "data_offsets") {
      throw fail(`unknown field ${JSON.stringify(key)} (expected dtype, shape, data_offsets)`);
    }
  }
  const rawDtype = entry.dtype;
  if (typeof rawDtype !== "string") throw fail(`dtype must be a string, got ${kind(rawDtype)}`);
  const dtype = FROM_SAFETENSORS.get(rawDtype);
  if (dtype === undefined) {
    throw fail(
      `unsupported dtype ${JSON.stringify(rawDtype)} (supported: ${
        [...FROM_SAFETENSORS.keys()].join(", ")
      })`,
    );
  }
  const shape = entry.shape;
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw fail(`shape must be an array of integers >= 0, got ${JSON.stringify(shape)}`);
  }
  const offsets = entry.data_offsets;
  if (
    !Array.isArray(offsets) || offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)
  ) {
    throw fail(
      `data_offsets must be [begin, end] with integers >= 0, got ${JSON.stringify(offsets)}`,
    );
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin) throw fail(`data_offsets [${begin}, ${end}] end before they begin`);
  let expected = DTYPE_BYTES[dtype];
  for (const d of shape as number[]) expected *= d;
  if (!Number.isSafeInteger(expected)) {
    throw fail(`shape [${shape.join(", ")}] is too large`);
  }
  if (end - begin !== expected) {
    throw fail(
      `data_offsets [${begin}, ${end}] hold ${end - begin} bytes but ${rawDtype} shape [${
        shape.join(", ")
      }] needs ${expected}`,
    );
  }
  if (end > dataSize) {
    throw fail(
      `data_offsets [${begin}, ${end}] run past the end of the file: the data section is only ` +
        `${dataSize} bytes (file truncated?)`,
    );
  }
  return {
    name,
    dtype,
    shape: Object.freeze([...shape as number[]]),
    dataOffsets: Object.freeze([begin, end] as const),
    fileOffset: dataStart + begin,
    byteLength: end - begin,
  };
}

/** One tensor to lay out in a new file. */
export interface HeaderEntry {
  /** Tensor name. */
  readonly name: string;
  /** Element type. */
  readonly dtype: DType;
  /** Dimensions. */
  readonly shape: readonly number[];
  /** Size of its data in bytes. */
  readonly byteLength: number;
}

/**
 * Encodes the 8-byte length prefix and JSON header for `entries`, whose data is laid out
 * back to back in the given order. The JSON is padded with spaces so the data section starts
 * at a multiple of 8 bytes, as the reference implementation does.
 */
export function encodeHeader(
  entries: readonly HeaderEntry[],
  metadata: Readonly<Record<string, string>> | undefined,
): Uint8Array {
  // Built with Object.fromEntries so that a name like "__proto__" stays an ordinary key.
  const fields: [string, unknown][] = metadata === undefined ? [] : [["__metadata__", metadata]];
  let offset = 0;
  for (const e of entries) {
    fields.push([e.name, {
      dtype: SAFETENSORS_DTYPE_NAMES[e.dtype],
      shape: e.shape,
      data_offsets: [offset, offset + e.byteLength],
    }]);
    offset += e.byteLength;
  }
  const json = new TextEncoder().encode(JSON.stringify(Object.fromEntries(fields)));
  const padded = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + padded).fill(0x20, 8 + json.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  return out;
}

function kind(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : `${typeof value} ${JSON.stringify(value)}`;
}

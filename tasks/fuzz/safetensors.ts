/**
 * Fuzzing the safetensors reader: valid files of random tensors, damaged at the byte level or
 * in their JSON header, are opened and read with {@linkcode SafetensorsFile} and judged by an
 * independent reference validator written here from the format's rules:
 *
 * - an 8-byte little-endian header length `n` of at most 100 MB, within the file;
 * - `n` bytes of UTF-8 JSON: an object whose `__metadata__` (if present) maps to strings and
 *   whose other entries have exactly `dtype` (F64, F32, F16, BF16, I64, I32, U8, BOOL), `shape`
 *   (integers >= 0) and `data_offsets` (`[begin, end]`, integers, `begin <= end`), with
 *   `end - begin = prod(shape) · size(dtype)`;
 * - every byte of the data section belongs to exactly one tensor, and an empty tensor sits on
 *   a boundary between tensors (the reference implementation's tiling);
 * - BOOL bytes are 0 or 1.
 *
 * The reader must accept exactly the files the validator accepts, with the same bytes for every
 * tensor, and reject the others with a `SafetensorsError` naming the file.
 *
 * @module
 */
import { join } from "node:path";
import { SafetensorsError, SafetensorsFile } from "../../src/io/safetensors.ts";
import type { Rng } from "../../src/tensor/rng.ts";
import { mutateBytes, type Mutated, randomBytes } from "./mutate.ts";
import type { FuzzFormat, Outcome } from "./types.ts";

const SIZES: Readonly<Record<string, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  U8: 1,
  BOOL: 1,
};
const DTYPES = Object.keys(SIZES);

/** What the reference validator makes of a file: its tensors' bytes, or why it is invalid. */
type Verdict =
  | { readonly valid: true; readonly tensors: Map<string, { dtype: string; bytes: Uint8Array }> }
  | { readonly valid: false; readonly why: string };

const isInt = (v: unknown): v is number =>
  typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

/** The reference validator (see the module documentation). */
export function referenceVerdict(file: Uint8Array): Verdict {
  const no = (why: string): Verdict => ({ valid: false, why });
  if (file.length < 8) return no("shorter than 8 bytes");
  let n = 0n;
  for (let i = 7; i >= 0; i--) n = (n << 8n) | BigInt(file[i]);
  if (n > 100_000_000n || 8n + n > BigInt(file.length)) return no("bad header length");
  const start = 8 + Number(n);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(file.subarray(8, start)));
  } catch {
    return no("header is not UTF-8 JSON");
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) return no("not object");
  const data = file.subarray(start);
  const cover = new Uint8Array(data.length);
  const boundaries = new Set<number>([0, data.length]);
  const empties: number[] = [];
  const tensors = new Map<string, { dtype: string; bytes: Uint8Array }>();
  for (const [name, entry] of Object.entries(json as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (typeof entry !== "object" || entry === null || Array.isArray(entry)) return no("meta");
      if (Object.values(entry).some((v) => typeof v !== "string")) return no("meta value");
      continue;
    }
    if (typeof entry !== "object" || entry === null || Array.isArray(entry)) return no("entry");
    const keys = Object.keys(entry).sort().join();
    if (keys !== "data_offsets,dtype,shape") return no(`fields ${keys}`);
    const { dtype, shape, data_offsets: off } = entry as Record<string, unknown>;
    if (typeof dtype !== "string" || !(dtype in SIZES)) return no("dtype");
    if (!Array.isArray(shape) || !shape.every(isInt)) return no("shape");
    if (!Array.isArray(off) || off.length !== 2 || !off.every(isInt)) return no("offsets");
    const [b, e] = off as [number, number];
    if (b > e) return no("offsets reversed");
    const bytes = shape.reduce((p: bigint, d: number) => p * BigInt(d), BigInt(SIZES[dtype]));
    if (bytes !== BigInt(e - b)) return no("size");
    if (e > data.length) return no("past the end");
    for (let i = b; i < e; i++) if (++cover[i] > 1) return no("overlap");
    if (b === e) empties.push(b);
    else boundaries.add(b).add(e);
    const slice = data.slice(b, e);
    if (dtype === "BOOL" && slice.some((x) => x > 1)) return no("bool byte");
    tensors.set(name, { dtype, bytes: slice });
  }
  if (cover.some((c) => c !== 1)) return no("hole or extra bytes");
  if (empties.some((x) => !boundaries.has(x))) return no("empty tensor inside another");
  return { valid: true, tensors };
}

/** A valid file of 1 to 4 random tensors (some empty), with metadata half the time. */
function validFile(rng: Rng): { header: Record<string, unknown>; data: Uint8Array } {
  const header: Record<string, unknown> = {};
  if (rng.uniform() < 0.5) header.__metadata__ = { format: "pt", note: `n${rng.int(100)}` };
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (let t = 1 + rng.int(4); t > 0; t--) {
    const dtype = DTYPES[rng.int(DTYPES.length)];
    const shape = Array.from({ length: rng.int(3) + 1 }, () => rng.int(4) + (rng.int(8) ? 1 : 0));
    const size = shape.reduce((p, d) => p * d, SIZES[dtype]);
    const bytes = dtype === "BOOL"
      ? Uint8Array.from({ length: size }, () => rng.int(2))
      : randomBytes(rng, size);
    header[`t${t}.weight`] = { dtype, shape, data_offsets: [offset, offset + size] };
    chunks.push(bytes);
    offset += size;
  }
  const data = new Uint8Array(offset);
  let at = 0;
  for (const c of chunks) data.set(c, (at += c.length) - c.length);
  return { header, data };
}

/** The bytes of a file: length, the JSON header (padded to 8 with spaces), the data. */
function encode(header: unknown, data: Uint8Array): Uint8Array {
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (new TextEncoder().encode(json).length % 8)) % 8);
  const head = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + head.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  out.set(data, 8 + head.length);
  return out;
}

/** A mutation of the JSON header (the data kept, the length prefix recomputed). */
function mutateHeader(
  header: Record<string, unknown>,
  data: Uint8Array,
  rng: Rng,
): Mutated {
  const names = Object.keys(header).filter((k) => k !== "__metadata__");
  const name = names[rng.int(names.length)];
  const entry = { ...(header[name] as Record<string, unknown>) };
  const [b, e] = entry.data_offsets as [number, number];
  const junk = [null, -1, 1.5, "3", [1, 2, 3], [2 ** 53, 2 ** 53 + 8], {}, true];
  const changes: [string, () => void][] = [
    ["shift offsets", () => (entry.data_offsets = [b + 1 + rng.int(8), e + 1 + rng.int(8)])],
    ["move end", () => (entry.data_offsets = [b, Math.max(0, e + rng.int(9) - 4)])],
    ["move begin", () => (entry.data_offsets = [Math.max(0, b + rng.int(9) - 4), e])],
    ["junk offsets", () => (entry.data_offsets = junk[rng.int(junk.length)])],
    ["junk shape", () => (entry.shape = [junk[rng.int(junk.length)]])],
    ["grow shape", () => (entry.shape = [...(entry.shape as number[]), 2])],
    ["huge shape", () => (entry.shape = [2 ** 40, 2 ** 20])],
    ["dtype", () => (entry.dtype = ["I8", "F8_E4M3", "float32", 7, "U8", "F64"][rng.int(6)])],
    ["extra field", () => (entry.extra = 1)],
    ["drop field", () => delete entry[["dtype", "shape", "data_offsets"][rng.int(3)]]],
    ["drop tensor", () => delete header[name]],
    ["meta value", () => (header.__metadata__ = { k: rng.int(2) ? 1 : null })],
    ["meta kind", () => (header.__metadata__ = rng.int(2) ? ["x"] : null)],
    ["entry kind", () => (header[name] = rng.int(2) ? [1] : "x")],
    ["add tensor", () => (header.extra_t = { dtype: "U8", shape: [4], data_offsets: [e, e + 4] })],
  ];
  const [what, change] = changes[rng.int(changes.length)];
  if (!what.startsWith("drop tensor") && !what.startsWith("entry") && !what.startsWith("meta")) {
    header[name] = entry;
  }
  change();
  return { bytes: encode(header, data), what: `header: ${what} of ${name}` };
}

/** The safetensors format of the fuzzer. */
export const SAFETENSORS_FORMAT: FuzzFormat<string> = {
  name: "safetensors",
  setup: (dir) => Promise.resolve(dir),
  async run(dir, rng, index): Promise<Outcome> {
    const { header, data } = validFile(rng);
    const roll = rng.uniform();
    const { bytes, what } = roll < 0.1
      ? { bytes: encode(header, data), what: "unchanged" }
      : roll < 0.55
      ? mutateHeader(header, data, rng)
      : mutateBytes(encode(header, data), rng);
    const path = join(dir, `case-${index}.safetensors`);
    await Deno.writeFile(path, bytes);
    const verdict = referenceVerdict(bytes);
    try {
      let got: Map<string, Uint8Array>;
      try {
        const file = await SafetensorsFile.open(path);
        try {
          got = new Map();
          for (const t of file.tensors()) {
            const tensor = await file.read(t.name);
            const d = tensor.data;
            got.set(t.name, new Uint8Array(d.buffer, d.byteOffset, d.byteLength).slice());
          }
        } finally {
          file.close();
        }
      } catch (error) {
        if (!(error instanceof SafetensorsError) || !error.message.startsWith(path)) {
          return { kind: "escaped", what, detail: String(error) };
        }
        return verdict.valid
          ? { kind: "rejected-valid", what, detail: error.message }
          : { kind: "rejected", what };
      }
      if (!verdict.valid) return { kind: "accepted-invalid", what, detail: verdict.why };
      const same = got.size === verdict.tensors.size &&
        [...verdict.tensors].every(([name, t]) =>
          got.get(name)?.length === t.bytes.length &&
          got.get(name)!.every((x, i) => x === t.bytes[i])
        );
      return same
        ? { kind: "accepted", what }
        : { kind: "accepted-invalid", what, detail: "tensor bytes differ from the reference" };
    } finally {
      await Deno.remove(path);
    }
  },
};

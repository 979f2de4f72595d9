/**
 * The record file of an expert repository (`records.log`): a sequence of framed records, each
 * written with one append and fsynced before the edit is acknowledged.
 *
 * Record layout (integers little-endian, every record a multiple of 4 bytes long):
 * ```
 * offset  size  field
 * 0       4     magic "LER1"
 * 4       4     payload length P (u32)
 * 8       4     CRC32 (IEEE, zlib's) of the payload
 * 12      4     CRC32 of bytes 0..12 (so a damaged length is never trusted)
 * 16      P     payload:
 *                 u32 J, J bytes of UTF-8 JSON padded with spaces to a multiple of 4,
 *                 then (edit records only) eqr, evr, C, R as f32, row-major, in that order
 * ```
 * JSON bodies: `{"type":"edit","id":N,"time":ISO,"request":{prompt,target,image?,imageSha256?}}`,
 * `{"type":"undo","id":N,"time":ISO}` (a tombstone for edit N) and `{"type":"ids","next":N}`
 * (written first by compaction so ids of removed edits are never reused).
 *
 * @module
 */
import { crc32 } from "node:zlib";
import {
  checkRequest,
  type EditRequest,
  EXPERT_TENSORS,
  type ExpertDims,
  expertElements,
  expertShape,
  type StoredExpert,
} from "./types.ts";
import { Tensor } from "../../../tensor/tensor.ts";

/** The 4 bytes every record starts with: ASCII "LER1". */
export const RECORD_MAGIC: Uint8Array = new Uint8Array([0x4c, 0x45, 0x52, 0x31]);

/** Size of a record's frame header in bytes. */
export const RECORD_HEADER_BYTES = 16;

/** A decoded record body. */
export type RecordBody =
  | { type: "edit"; id: number; time: string; request: EditRequest }
  | { type: "undo"; id: number; time: string }
  | { type: "ids"; next: number };

/** CRC32 (IEEE 802.3, as zlib and PNG) of `bytes`. */
export function crc32Of(bytes: Uint8Array): number {
  return crc32(bytes) >>> 0;
}

/**
 * Frames `body` (and, for an edit, its expert's f32 data `tensors`, the four arrays in
 * {@linkcode EXPERT_TENSORS} order) as one record.
 */
export function encodeRecord(body: RecordBody, tensors: readonly Float32Array[] = []): Uint8Array {
  let json = JSON.stringify(body);
  let jsonBytes = new TextEncoder().encode(json);
  if (jsonBytes.length % 4 !== 0) {
    json += " ".repeat(4 - jsonBytes.length % 4);
    jsonBytes = new TextEncoder().encode(json);
  }
  let tensorBytes = 0;
  for (const t of tensors) tensorBytes += t.byteLength;
  const payloadLength = 4 + jsonBytes.length + tensorBytes;
  const out = new Uint8Array(RECORD_HEADER_BYTES + payloadLength);
  const view = new DataView(out.buffer);
  const payload = out.subarray(RECORD_HEADER_BYTES);
  view.setUint32(RECORD_HEADER_BYTES, jsonBytes.length, true);
  payload.set(jsonBytes, 4);
  let at = 4 + jsonBytes.length;
  for (const t of tensors) {
    payload.set(new Uint8Array(t.buffer, t.byteOffset, t.byteLength), at);
    at += t.byteLength;
  }
  out.set(RECORD_MAGIC, 0);
  view.setUint32(4, payloadLength, true);
  view.setUint32(8, crc32Of(payload), true);
  view.setUint32(12, crc32Of(out.subarray(0, 12)), true);
  return out;
}

/** A frame header that passed its checks: the payload's length and expected CRC. */
export interface FrameHeader {
  /** Payload length in bytes. */
  readonly payloadLength: number;
  /** CRC32 the payload must have. */
  readonly payloadCrc: number;
}

/**
 * Decodes the 16 bytes of a frame header; returns why it is not one (bad magic, header
 * checksum, or a length that is not a positive multiple of 4) as a string.
 */
export function decodeFrameHeader(bytes: Uint8Array): FrameHeader | string {
  if (bytes.length < RECORD_HEADER_BYTES) return `only ${bytes.length} bytes of a record header`;
  for (let i = 0; i < 4; i++) {
    if (bytes[i] !== RECORD_MAGIC[i]) return "no record magic";
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, RECORD_HEADER_BYTES);
  if (view.getUint32(12, true) !== crc32Of(bytes.subarray(0, 12))) {
    return "record header checksum mismatch";
  }
  const payloadLength = view.getUint32(4, true);
  if (payloadLength < 4 || payloadLength % 4 !== 0) return `bad payload length ${payloadLength}`;
  return { payloadLength, payloadCrc: view.getUint32(8, true) };
}

/**
 * Decodes a payload whose CRC has been checked. Throws with `where` (file and offset) when it
 * is malformed: a writer bug or a foreign file, never a torn write.
 */
export function decodePayload(
  payload: Uint8Array,
  dims: ExpertDims,
  where: string,
): { body: RecordBody; tensorOffset: number } {
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const jsonLength = view.getUint32(0, true);
  if (4 + jsonLength > payload.length) {
    throw new Error(`${where}: record JSON length ${jsonLength} runs past its payload`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(
      new TextDecoder("utf-8", { fatal: true }).decode(payload.subarray(4, 4 + jsonLength)),
    );
  } catch (error) {
    throw new Error(`${where}: record JSON is invalid: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const body = checkBody(raw, where);
  const tensorOffset = 4 + jsonLength;
  const expected = body.type === "edit" ? expertElements(dims) * 4 : 0;
  if (payload.length - tensorOffset !== expected) {
    throw new Error(
      `${where}: ${body.type} record carries ${
        payload.length - tensorOffset
      } tensor bytes, expected ${expected} for dims ${JSON.stringify(dims)}`,
    );
  }
  return { body, tensorOffset };
}

function checkBody(raw: unknown, where: string): RecordBody {
  const o = raw as Record<string, unknown> | null;
  const isId = (v: unknown) => typeof v === "number" && Number.isSafeInteger(v) && v >= 1;
  const isTime = (v: unknown) => typeof v === "string" && !Number.isNaN(Date.parse(v));
  if (o?.type === "edit" && isId(o.id) && isTime(o.time)) {
    const request = checkRequest(o.request, where);
    return { type: "edit", id: o.id as number, time: o.time as string, request };
  }
  if (o?.type === "undo" && isId(o.id) && isTime(o.time)) {
    return { type: "undo", id: o.id as number, time: o.time as string };
  }
  if (o?.type === "ids" && isId(o.next)) return { type: "ids", next: o.next as number };
  throw new Error(`${where}: unrecognised record ${JSON.stringify(raw).slice(0, 200)}`);
}

/**
 * The expert of an edit record: `payload`'s tensor bytes (from `tensorOffset`) copied into
 * fresh f32 tensors shaped by `dims`.
 */
export function decodeExpert(
  body: Extract<RecordBody, { type: "edit" }>,
  payload: Uint8Array,
  tensorOffset: number,
  dims: ExpertDims,
): StoredExpert {
  const bytes = payload.slice(tensorOffset);
  const all = new Float32Array(bytes.buffer, 0, bytes.byteLength / 4);
  const tensors: Record<string, Tensor<"f32">> = {};
  let at = 0;
  for (const name of EXPERT_TENSORS) {
    const shape = expertShape(dims, name);
    const n = shape[0] * shape[1];
    tensors[name] = new Tensor("f32", shape, all.subarray(at, at + n));
    at += n;
  }
  return {
    id: body.id,
    time: body.time,
    request: body.request,
    eqr: tensors.eqr,
    evr: tensors.evr,
    C: tensors.C,
    R: tensors.R,
  };
}

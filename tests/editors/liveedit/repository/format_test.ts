import assert from "node:assert/strict";
import {
  crc32Of,
  decodeFrameHeader,
  decodePayload,
  encodeRecord,
} from "../../../../src/editors/liveedit/repository/format.ts";
import { DIMS } from "./_helpers.ts";

Deno.test("crc32Of matches the IEEE check value and a naive bitwise CRC", () => {
  assert.equal(crc32Of(new TextEncoder().encode("123456789")), 0xcbf43926);
  const naive = (bytes: Uint8Array) => {
    let c = 0xffffffff;
    for (const b of bytes) {
      c ^= b;
      for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
    }
    return (c ^ 0xffffffff) >>> 0;
  };
  const bytes = Uint8Array.from({ length: 1000 }, (_, i) => (i * 37 + 11) & 255);
  assert.equal(crc32Of(bytes), naive(bytes));
});

Deno.test("encodeRecord follows the documented layout", () => {
  const data = [new Float32Array([1.5, -2]), new Float32Array([3])];
  const record = encodeRecord({ type: "undo", id: 9, time: "2025-01-01T00:00:00.000Z" }, data);
  const view = new DataView(record.buffer);
  assert.equal(new TextDecoder().decode(record.subarray(0, 4)), "LER1");
  const payloadLength = view.getUint32(4, true);
  assert.equal(record.length, 16 + payloadLength);
  assert.equal(record.length % 4, 0);
  assert.equal(view.getUint32(8, true), crc32Of(record.subarray(16)));
  assert.equal(view.getUint32(12, true), crc32Of(record.subarray(0, 12)));
  const jsonLength = view.getUint32(16, true);
  assert.equal(jsonLength % 4, 0);
  const json = JSON.parse(new TextDecoder().decode(record.subarray(20, 20 + jsonLength)));
  assert.deepEqual(json, { type: "undo", id: 9, time: "2025-01-01T00:00:00.000Z" });
  const floats = new Float32Array(record.slice(20 + jsonLength).buffer);
  assert.deepEqual([...floats], [1.5, -2, 3]);
});

Deno.test("decodeFrameHeader rejects a damaged length and decodePayload a wrong size", () => {
  const record = encodeRecord({ type: "ids", next: 4 });
  assert.equal(typeof decodeFrameHeader(record), "object");
  const bad = record.slice();
  bad[5] ^= 1;
  assert.equal(decodeFrameHeader(bad), "record header checksum mismatch");
  assert.equal(decodeFrameHeader(record.subarray(0, 10)), "only 10 bytes of a record header");
  const edit = encodeRecord({
    type: "edit",
    id: 1,
    time: "2025-01-01T00:00:00.000Z",
    request: { prompt: "p", target: "t" },
  }, [new Float32Array(3)]);
  assert.throws(
    () => decodePayload(edit.subarray(16), DIMS, "f: record at 0"),
    /f: record at 0: edit record carries 12 tensor bytes, expected 128/,
  );
});

import assert from "node:assert/strict";
import { decodeNumbers } from "../../src/tensor/numbers.ts";
import { f32ToBf16Bits, f32ToF16Bits } from "../../src/tensor/half.ts";

Deno.test("decodeNumbers: reads every dtype's elements as float64 numbers", () => {
  assert.deepEqual([...decodeNumbers("f32", Float32Array.of(0.5, -2))], [0.5, -2]);
  assert.deepEqual([...decodeNumbers("f16", Uint16Array.of(f32ToF16Bits(1.5)))], [1.5]);
  assert.deepEqual([...decodeNumbers("bf16", Uint16Array.of(f32ToBf16Bits(-3)))], [-3]);
  assert.deepEqual([...decodeNumbers("i64", BigInt64Array.of(-7n, 2n ** 40n))], [-7, 2 ** 40]);
  assert.deepEqual([...decodeNumbers("bool", Uint8Array.of(1, 0))], [1, 0]);
  assert.deepEqual([...decodeNumbers("u8", Uint8Array.of(255))], [255]);
});

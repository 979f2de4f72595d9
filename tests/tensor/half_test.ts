import assert from "node:assert/strict";
import {
  bf16BitsToF32,
  f16BitsToF32,
  f32Bits,
  f32FromBits,
  f32ToBf16Bits,
  f32ToF16Bits,
} from "../../src/tensor/half.ts";
import { Rng } from "../../src/tensor/rng.ts";

/** Deno's built-in Float16Array rounds a double to the nearest binary16 (ties to even). */
const F16 = (globalThis as unknown as { Float16Array: Float32ArrayConstructor }).Float16Array;
const viaBuiltin = (x: number) => new Uint16Array(new F16([x]).buffer)[0];

Deno.test("f32ToF16Bits: hand-checked patterns incl. ties, overflow, subnormals, specials", () => {
  const cases: [number, number][] = [
    [1, 0x3c00],
    [-2, 0xc000],
    [0.5, 0x3800],
    [65504, 0x7bff], // largest finite
    [65519, 0x7bff], // below the midpoint to Inf
    [65520, 0x7c00], // midpoint 65504..65536: ties to even -> Inf
    [1e6, 0x7c00],
    [-1e6, 0xfc00],
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -25, 0x0000], // half of it: tie, to even (0)
    [2 ** -25 * 1.5, 0x0001], // above the tie
    [3 * 2 ** -25, 0x0002], // tie between 1 and 2 -> 2 (even)
    [5 * 2 ** -25, 0x0002], // tie between 2 and 3 -> 2 (even)
    [2 ** -26, 0x0000],
    [1 + 2 ** -11, 0x3c00], // tie between 0x3c00 and 0x3c01 -> even
    [1 + 3 * 2 ** -11, 0x3c02], // tie between 0x3c01 and 0x3c02 -> even
    [1 + 2 ** -11 + 2 ** -20, 0x3c01],
    [(2 ** -14) * (1 - 2 ** -11), 0x0400], // largest subnormal tie rounds up into the normals
    [0, 0x0000],
    [-0, 0x8000],
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
  ];
  for (const [x, bits] of cases) assert.equal(f32ToF16Bits(x), bits, `f16(${x})`);
  const nan = f32ToF16Bits(NaN);
  assert.equal(nan & 0x7c00, 0x7c00);
  assert.notEqual(nan & 0x03ff, 0);
  assert.ok(Number.isNaN(f16BitsToF32(nan)));
});

Deno.test("f32ToF16Bits matches numpy float32->float16 on sampled values", () => {
  // np.random.default_rng(0).standard_normal(8).astype(np.float32) * 1000, then .astype(np.float16)
  const xs = [125.73021697998047, -132.1048583984375, 640.4226684570312, 104.90011596679688];
  const ys = [-535.6693725585938, 361.5950622558594, 1304.0, 947.0809936523438];
  const bits = [22492, 55329, 24833, 22158, 57391, 23974, 25880, 25446];
  [...xs, ...ys].forEach((x, i) => assert.equal(f32ToF16Bits(x), bits[i], `f16(${x})`));
});

Deno.test("f32ToF16Bits agrees with the built-in Float16Array on 200k random float32 patterns", () => {
  const rng = new Rng(7);
  for (let i = 0; i < 200_000; i++) {
    const x = f32FromBits(rng.nextU32());
    if (Number.isNaN(x)) continue;
    assert.equal(f32ToF16Bits(x), viaBuiltin(x), `bits 0x${f32Bits(x).toString(16)}`);
  }
});

Deno.test("f16BitsToF32: all 65536 patterns match Float16Array and round-trip", () => {
  const all = new Uint16Array(65536).map((_, i) => i);
  const ref = new F16(all.buffer);
  for (let b = 0; b < 65536; b++) {
    const x = f16BitsToF32(b);
    if (Number.isNaN(ref[b])) {
      assert.ok(Number.isNaN(x), `0x${b.toString(16)} is NaN`);
      assert.ok(Number.isNaN(f16BitsToF32(f32ToF16Bits(x))));
      continue;
    }
    assert.ok(Object.is(x, ref[b]), `0x${b.toString(16)}: ${x} vs ${ref[b]}`);
    assert.equal(f32ToF16Bits(x), b, `round trip 0x${b.toString(16)}`);
  }
  assert.equal(f16BitsToF32(0x0001), 2 ** -24);
  assert.equal(f16BitsToF32(0x7c00), Infinity);
  assert.ok(Object.is(f16BitsToF32(0x8000), -0));
});

/** Independent bf16 rounding: the nearer of the two truncation neighbours, ties to even. */
function bf16Reference(x: number): number {
  const lo = f32Bits(x) >>> 16;
  const hi = (lo + 1) & 0xffff;
  // Rounding past the largest finite value gives Inf, which sits at 2^128 for this purpose.
  const hv = (hi & 0x7fff) === 0x7f80 ? Math.sign(x) * 2 ** 128 : f32FromBits(hi << 16);
  const dl = Math.abs(x - f32FromBits(lo << 16)), dh = Math.abs(hv - x);
  if (dl < dh) return lo;
  if (dh < dl) return hi;
  return lo & 1 ? hi : lo;
}

Deno.test("f32ToBf16Bits: hand-checked ties, overflow, subnormals and NaN", () => {
  const cases: [number, number][] = [
    [0x3f800000, 0x3f80], // 1
    [0x3f808000, 0x3f80], // tie, even stays
    [0x3f818000, 0x3f82], // tie, odd rounds up
    [0x3f808001, 0x3f81], // above the tie
    [0x3f807fff, 0x3f80], // below the tie
    [0x7f7fffff, 0x7f80], // max float32 rounds to Inf
    [0xff7fffff, 0xff80],
    [0x00018000, 0x0002], // subnormal tie, odd rounds up
    [0x00008000, 0x0000], // subnormal tie, even stays
    [0x80000000, 0x8000], // -0
    [0x7f800000, 0x7f80], // Inf
  ];
  for (const [bits, out] of cases) {
    assert.equal(f32ToBf16Bits(f32FromBits(bits)), out, `bf16(0x${bits.toString(16)})`);
  }
  const nan = f32ToBf16Bits(f32FromBits(0x7f800001)); // signalling NaN payload in the low bits
  assert.equal(nan & 0x7f80, 0x7f80);
  assert.notEqual(nan & 0x7f, 0, "stays NaN, not Inf");
  assert.ok(Number.isNaN(bf16BitsToF32(nan)));
});

Deno.test("f32ToBf16Bits matches nearest-even reference on 200k random float32 patterns", () => {
  const rng = new Rng(11);
  for (let i = 0; i < 200_000; i++) {
    const bits = rng.nextU32();
    const x = f32FromBits(bits);
    if (Number.isNaN(x) || (bits & 0x7f800000) === 0x7f800000) continue;
    assert.equal(f32ToBf16Bits(x), bf16Reference(x), `bits 0x${bits.toString(16)}`);
  }
});

Deno.test("bf16BitsToF32: round-trips every non-NaN pattern", () => {
  for (let b = 0; b < 65536; b++) {
    const x = bf16BitsToF32(b);
    if (Number.isNaN(x)) continue;
    assert.equal(f32ToBf16Bits(x), b, `0x${b.toString(16)}`);
  }
  assert.equal(bf16BitsToF32(0x3f80), 1);
  assert.equal(bf16BitsToF32(0xc040), -3);
});

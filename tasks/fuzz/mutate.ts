/**
 * Byte-level mutations for the fuzzer: each takes the input and a seeded {@linkcode Rng} and
 * returns a new buffer and a short description of what it did (for reproducing a case).
 *
 * @module
 */
import type { Rng } from "../../src/tensor/rng.ts";

/** A mutated input and what was done to it. */
export interface Mutated {
  /** The bytes. */
  readonly bytes: Uint8Array;
  /** What was done, e.g. `flip 0x10 at 37`. */
  readonly what: string;
}

/** A mutation of bytes. */
export type ByteMutation = (bytes: Uint8Array, rng: Rng) => Mutated;

/** Random bytes of length `n`. */
export function randomBytes(rng: Rng, n: number): Uint8Array {
  return Uint8Array.from({ length: n }, () => rng.int(256));
}

/** A position in `[from, to)`, biased towards `from` (headers are where the structure is). */
function position(rng: Rng, length: number): number {
  if (length === 0) return 0;
  return rng.uniform() < 0.6 ? rng.int(Math.min(length, 64)) : rng.int(length);
}

/** The byte-level mutations: flips, overwrites, insertions, deletions, cuts and appends. */
export const BYTE_MUTATIONS: readonly ByteMutation[] = [
  (b, rng) => {
    const at = position(rng, b.length), bit = 1 << rng.int(8);
    const out = b.slice();
    if (b.length > 0) out[at] ^= bit;
    return { bytes: out, what: `flip bit ${bit} at ${at}` };
  },
  (b, rng) => {
    const at = position(rng, b.length), v = rng.int(256);
    const out = b.slice();
    if (b.length > 0) out[at] = v;
    return { bytes: out, what: `set ${v} at ${at}` };
  },
  (b, rng) => {
    const at = rng.int(b.length + 1), ins = randomBytes(rng, 1 + rng.int(8));
    const out = new Uint8Array(b.length + ins.length);
    out.set(b.subarray(0, at));
    out.set(ins, at);
    out.set(b.subarray(at), at + ins.length);
    return { bytes: out, what: `insert ${ins.length} bytes at ${at}` };
  },
  (b, rng) => {
    const at = rng.int(b.length + 1), n = Math.min(1 + rng.int(8), b.length - at);
    const out = new Uint8Array(b.length - n);
    out.set(b.subarray(0, at));
    out.set(b.subarray(at + n), at);
    return { bytes: out, what: `delete ${n} bytes at ${at}` };
  },
  (b, rng) => {
    const n = rng.int(b.length + 1);
    return { bytes: b.slice(0, n), what: `cut to ${n} bytes` };
  },
  (b, rng) => {
    const extra = randomBytes(rng, 1 + rng.int(16));
    const out = new Uint8Array(b.length + extra.length);
    out.set(b);
    out.set(extra, b.length);
    return { bytes: out, what: `append ${extra.length} bytes` };
  },
];

/** Applies one to three random mutations of `mutations` to `bytes`. */
export function mutateBytes(
  bytes: Uint8Array,
  rng: Rng,
  mutations: readonly ByteMutation[] = BYTE_MUTATIONS,
): Mutated {
  let out = bytes;
  const what: string[] = [];
  for (let k = 1 + rng.int(3); k > 0; k--) {
    const m = mutations[rng.int(mutations.length)](out, rng);
    out = m.bytes;
    what.push(m.what);
  }
  return { bytes: out, what: what.join("; ") };
}

/**
 * A seeded random number generator, reproducible across runs and platforms.
 *
 * The generator is xoshiro128** (Blackman & Vigna; 128 bits of state in four 32-bit words,
 * period 2^128 - 1) written with 32-bit integer math (`Math.imul`, shifts), so every output
 * word is bit-identical everywhere. Seeds are expanded into the state with SplitMix32 (a
 * golden-ratio counter passed through the MurmurHash3 32-bit finalizer). `normal()` uses
 * `Math.log`/`Math.cos`, which V8 implements in software (an fdlibm port), so normals are
 * reproducible too for the same engine.
 *
 * @module
 */

/** The JSON-able state of an {@linkcode Rng}, from {@linkcode Rng.state}. */
export interface RngState {
  /** Always `"xoshiro128**"`. */
  algorithm: "xoshiro128**";
  /** The four unsigned 32-bit state words. */
  words: [number, number, number, number];
}

const GOLDEN = 0x9e3779b9;

/** MurmurHash3's 32-bit finalizer: a bijection on uint32 that mixes all bits. */
function fmix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** Four SplitMix32 outputs: words `start + k·GOLDEN` (k = 1..4) through {@linkcode fmix32}. */
function splitmix4(start: number): number[] {
  return [1, 2, 3, 4].map((k) => fmix32((start + Math.imul(k, GOLDEN)) >>> 0));
}

/**
 * A seeded generator: `uniform`, `normal`, `int`, `shuffle`, `fork`, and exact state
 * save/restore for resuming training.
 *
 * @example
 * ```ts
 * import { Rng } from "./rng.ts";
 * const a = new Rng(42), b = new Rng(42);
 * if (a.uniform() !== b.uniform()) throw new Error("same seed, same stream");
 * const saved = a.state();
 * const x = a.normal();
 * if (Rng.fromState(saved).normal() !== x) throw new Error("restored stream");
 * ```
 */
export class Rng {
  #s: Uint32Array;

  /**
   * Seeds the generator. `seed` is an integer in [0, 2^53); different seeds give different
   * states (the low and high 32-bit halves seed separate state words).
   */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed) || seed < 0) {
      throw new Error(`Rng seed must be an integer in [0, 2^53), got ${seed}`);
    }
    const lo = seed >>> 0;
    const hi = Math.floor(seed / 2 ** 32) >>> 0;
    const a = splitmix4(lo), b = splitmix4(hi ^ 0x6a09e667);
    this.#s = new Uint32Array([a[0], a[1], b[0], b[1]]);
  }

  /** Restores a generator saved with {@linkcode Rng.state}; throws on a malformed state. */
  static fromState(state: RngState): Rng {
    const w = state?.words;
    if (
      state?.algorithm !== "xoshiro128**" || !Array.isArray(w) || w.length !== 4 ||
      !w.every((x) => Number.isInteger(x) && x >= 0 && x < 2 ** 32) || w.every((x) => x === 0)
    ) {
      throw new Error(
        `invalid Rng state ${JSON.stringify(state)}: expected {algorithm: "xoshiro128**", ` +
          `words: four uint32, not all zero}`,
      );
    }
    const rng = new Rng(0);
    rng.#s.set(w);
    return rng;
  }

  /** The current state as a JSON-able value; {@linkcode Rng.fromState} resumes from it. */
  state(): RngState {
    const s = this.#s;
    return { algorithm: "xoshiro128**", words: [s[0], s[1], s[2], s[3]] };
  }

  /** The next raw output: a uniformly distributed unsigned 32-bit integer. */
  nextU32(): number {
    const s = this.#s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** A uniform float64 in [0, 1) with 53 random bits (two outputs). */
  uniform(): number {
    const a = this.nextU32() >>> 5, b = this.nextU32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  /** A standard normal sample by Box-Muller (two uniforms per sample, cosine branch only). */
  normal(): number {
    const u1 = 1 - this.uniform(); // (0, 1]: log is finite
    const u2 = this.uniform();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /** A uniform integer in [0, n) for an integer 1 <= n <= 2^32, without modulo bias. */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > 2 ** 32) {
      throw new Error(`Rng.int(n) needs an integer 1 <= n <= 2^32, got ${n}`);
    }
    const limit = 2 ** 32 - (2 ** 32 % n);
    let x = this.nextU32();
    while (x >= limit) x = this.nextU32();
    return x % n;
  }

  /** Shuffles `array` in place (Fisher-Yates) and returns it. */
  shuffle<T>(array: T[]): T[] {
    for (let i = array.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = array[i];
      array[i] = array[j];
      array[j] = tmp;
    }
    return array;
  }

  /**
   * An independent child generator. Advances this one by four outputs and expands them, each
   * passed through the finalizer with its own offset, into the child's state.
   */
  fork(): Rng {
    const words = [0, 1, 2, 3].map((k) =>
      fmix32((this.nextU32() ^ Math.imul(k + 1, GOLDEN)) >>> 0)
    );
    if (Math.max(...words) === 0) words[0] = 1;
    const child = new Rng(0);
    child.#s.set(words);
    return child;
  }
}

/** Rotates a 32-bit word left by `k`. */
function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

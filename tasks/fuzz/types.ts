/**
 * The shapes shared by the fuzzer's formats: one case's {@linkcode Outcome} and a
 * {@linkcode FuzzFormat}.
 *
 * @module
 */
import type { Rng } from "../../src/tensor/rng.ts";

/**
 * What one case gave. Good: `accepted` (a valid input read correctly), `rejected` (an invalid
 * input refused with the project's error naming the file). Bad: `accepted-invalid` (a damaged
 * input accepted, or read wrong), `rejected-valid` (a valid input refused), `escaped` (an
 * error of another type, or not naming the file), `hang` (no answer in time).
 */
export interface Outcome {
  /** The verdict. */
  readonly kind:
    | "accepted"
    | "rejected"
    | "accepted-invalid"
    | "rejected-valid"
    | "escaped"
    | "hang";
  /** What was done to the input. */
  readonly what: string;
  /** For the bad kinds: why. */
  readonly detail?: string;
}

/** One input format: set up once per run, then one case per call, from a seeded generator. */
export interface FuzzFormat<Context> {
  /** The name (`--format`). */
  readonly name: string;
  /** Prepares what every case needs (files under `dir`). */
  setup(dir: string): Promise<Context>;
  /** Generates, runs and judges case `index` with `rng`. */
  run(context: Context, rng: Rng, index: number): Promise<Outcome>;
}

/**
 * Shuffled training batches, one epoch at a time, reproducible and resumable: the order of
 * epoch `e` is a function of the {@linkcode Rng}'s state and `e` only, so a run resumed at
 * (epoch, step) with the same generator state sees exactly the batches it would have seen.
 *
 * The generator passed in is only read (its state is copied): epoch `e` shuffles with the
 * `(e + 1)`-th {@linkcode Rng.fork} of that copy. Keep one generator (or its saved state) for
 * the data order, separate from any other randomness.
 *
 * Differences from the original `ParallelDataset`: a batch never spans two epochs (without
 * `dropLast` the last batch of an epoch is smaller, where the original tops it up from the next
 * epoch's order), and there is one batch size. As there, a batch size larger than the data set
 * is clamped to its size.
 *
 * @module
 */
import { Rng } from "../tensor/rng.ts";

/** Options of {@linkcode batches}. */
export interface BatchOptions {
  /** Drop the last, incomplete batch of the epoch (default false: yield it smaller). */
  readonly dropLast?: boolean;
  /** The epoch, from 0 (default 0). */
  readonly epoch?: number;
  /** The first step of the epoch to yield, to resume mid-epoch (default 0). */
  readonly step?: number;
}

/** One batch. */
export interface Batch<T> {
  /** The epoch it belongs to. */
  readonly epoch: number;
  /** Its step within the epoch, from 0. */
  readonly step: number;
  /** The indices of its samples in the data set. */
  readonly indices: readonly number[];
  /** The samples. */
  readonly samples: readonly T[];
}

/**
 * How many batches one epoch of `count` samples has at `batchSize` (clamped to `count`).
 *
 * @example
 * ```ts
 * import { batchesPerEpoch } from "./batches.ts";
 * if (batchesPerEpoch(10, 4) !== 3 || batchesPerEpoch(10, 4, true) !== 2) throw new Error();
 * ```
 */
export function batchesPerEpoch(count: number, batchSize: number, dropLast = false): number {
  checkCount(count);
  const size = clampedBatchSize(batchSize, count);
  return dropLast ? Math.floor(count / size) : Math.ceil(count / size);
}

/** The permutation of `0..count-1` that epoch `epoch` visits, from `rng`'s state. */
export function epochOrder(count: number, rng: Rng, epoch: number): number[] {
  checkCount(count);
  checkIndex("epoch", epoch);
  const base = Rng.fromState(rng.state());
  let shuffler = base.fork();
  for (let e = 0; e < epoch; e++) shuffler = base.fork();
  return shuffler.shuffle(Array.from({ length: count }, (_, i) => i));
}

/**
 * The batches of one epoch of `samples`, shuffled by {@linkcode epochOrder}, starting at
 * `options.step`. Throws for an empty data set, a batch size that is not an integer >= 1, or
 * a step past the end of the epoch.
 *
 * @example
 * ```ts
 * import { batches } from "./batches.ts";
 * import { Rng } from "../tensor/rng.ts";
 * const rng = new Rng(7);
 * const all = [...batches(["a", "b", "c", "d", "e"], 2, rng, { epoch: 1 })];
 * const resumed = [...batches(["a", "b", "c", "d", "e"], 2, rng, { epoch: 1, step: 1 })];
 * if (all.length !== 3 || JSON.stringify(all.slice(1)) !== JSON.stringify(resumed)) {
 *   throw new Error("resume");
 * }
 * ```
 */
export function* batches<T>(
  samples: readonly T[],
  batchSize: number,
  rng: Rng,
  options: BatchOptions = {},
): Generator<Batch<T>> {
  const { dropLast = false, epoch = 0, step = 0 } = options;
  const total = batchesPerEpoch(samples.length, batchSize, dropLast);
  checkIndex("step", step);
  if (step > total) {
    throw new Error(`step ${step} is past the end of the epoch (${total} batches per epoch)`);
  }
  const size = clampedBatchSize(batchSize, samples.length);
  const order = epochOrder(samples.length, rng, epoch);
  for (let s = step; s < total; s++) {
    const indices = order.slice(s * size, (s + 1) * size);
    yield { epoch, step: s, indices, samples: indices.map((i) => samples[i]) };
  }
}

function clampedBatchSize(batchSize: number, count: number): number {
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) {
    throw new Error(`batch size must be an integer >= 1, got ${batchSize}`);
  }
  return Math.min(batchSize, count);
}

function checkCount(count: number): void {
  if (!Number.isSafeInteger(count) || count < 1) {
    throw new Error(`cannot batch ${count} samples: the data set is empty`);
  }
}

function checkIndex(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new Error(`${name} must be an integer >= 0, got ${value}`);
  }
}

/**
 * A bounded background producer: it pulls items from a source and maps each through an async
 * function ahead of the consumer, keeping at most `buffer` items taken from the source and not
 * yet consumed, and hands the results out in source order. The training loop uses it to run
 * `trainer.prepare(batch)` (the frozen backbone, on the extra devices) while the trainer steps.
 *
 * - Order: results come out in the order the source gave the items, whatever order the
 *   mapping finishes in.
 * - Bound: at most `buffer` items are pulled and not yet consumed; at most `concurrency`
 *   mappings run at once (started in source order).
 * - Errors: an error of the source or of the mapping for item `k` is thrown by the `next()`
 *   that would have returned item `k` (items before it come out first); the producer then
 *   stops.
 * - Stopping: {@linkcode Producer.close} (or `break` out of `for await`) stops pulling, waits for
 *   the mappings under way to settle (their errors are dropped) and closes the source.
 *
 * @example
 * ```ts
 * import { Producer } from "./producer.ts";
 * const p = new Producer([1, 2, 3], async (x) => x * 10, { buffer: 2 });
 * const out: number[] = [];
 * for await (const y of p) out.push(y);
 * if (out.join() !== "10,20,30") throw new Error(out.join());
 * ```
 *
 * @module
 */

/** Options of {@linkcode Producer}. */
export interface ProducerOptions {
  /** Most items pulled and not yet consumed (an integer >= 1). */
  readonly buffer: number;
  /** Most mappings running at once (an integer >= 1, default 1). */
  readonly concurrency?: number;
}

const DONE = Symbol("done");

/** See the module documentation. */
export class Producer<I, O> implements AsyncIterableIterator<O> {
  readonly #iterator: Iterator<I> | AsyncIterator<I>;
  readonly #map: (item: I, index: number) => Promise<O>;
  readonly #buffer: number;
  readonly #concurrency: number;
  readonly #queue: Promise<O | typeof DONE>[] = [];
  #pull: Promise<unknown> = Promise.resolve();
  #running = 0;
  #waiting: (() => void)[] = [];
  #index = 0;
  #exhausted = false;
  #stopped = false;
  #started = 0;
  #consumed = 0;

  /** Starts pulling from `source` right away, mapping each item with `map`. */
  constructor(
    source: Iterable<I> | AsyncIterable<I>,
    map: (item: I, index: number) => Promise<O>,
    options: ProducerOptions,
  ) {
    const { buffer, concurrency = 1 } = options;
    for (const [what, v] of [["buffer", buffer], ["concurrency", concurrency]] as const) {
      if (!Number.isSafeInteger(v) || v < 1) {
        throw new Error(`Producer: ${what} must be an integer >= 1, got ${v}`);
      }
    }
    this.#iterator = Symbol.asyncIterator in source
      ? (source as AsyncIterable<I>)[Symbol.asyncIterator]()
      : (source as Iterable<I>)[Symbol.iterator]();
    this.#map = map;
    this.#buffer = buffer;
    this.#concurrency = concurrency;
    this.#fill();
  }

  /** Items pulled from the source and not yet handed out (never more than `buffer`). */
  get pending(): number {
    return this.#started - this.#consumed;
  }

  /** The next result in source order; rejects with the source's or the mapping's error. */
  async next(): Promise<IteratorResult<O>> {
    const slot = this.#queue.shift();
    if (slot === undefined) return { done: true, value: undefined };
    let value: O | typeof DONE;
    try {
      value = await slot;
    } catch (error) {
      await this.close();
      throw error;
    }
    if (value === DONE) {
      await this.close();
      return { done: true, value: undefined };
    }
    this.#consumed++;
    this.#fill();
    return { done: false, value };
  }

  /** Stops the producer (see the module documentation); safe to call more than once. */
  async close(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    const left = this.#queue.splice(0);
    await Promise.allSettled(left);
    await this.#pull.catch(() => {});
    await Promise.resolve(this.#iterator.return?.()).catch(() => {});
  }

  /** `for await` support: `break` closes the producer. */
  async return(): Promise<IteratorResult<O>> {
    await this.close();
    return { done: true, value: undefined };
  }

  /** The producer is its own async iterator. */
  [Symbol.asyncIterator](): this {
    return this;
  }

  /** Queues slots until `buffer` items are pulled and not consumed. */
  #fill(): void {
    while (!this.#stopped && !this.#exhausted && this.#queue.length < this.#buffer) {
      const pulled: Promise<IteratorResult<I> | typeof DONE> = this.#pull.then(() =>
        this.#exhausted ? DONE : this.#iterator.next()
      );
      this.#pull = pulled.catch(() => {});
      const slot = pulled.then((r): O | typeof DONE | Promise<O> => {
        if (r === DONE || r.done) {
          this.#exhausted = true;
          return DONE;
        }
        this.#started++;
        return this.#run(r.value, this.#index++);
      });
      slot.catch(() => {}); // rejections are rethrown by next(); never unhandled
      this.#queue.push(slot);
    }
  }

  /** Runs one mapping under the concurrency limit (FIFO). */
  async #run(item: I, index: number): Promise<O> {
    if (this.#running >= this.#concurrency) {
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    } else this.#running++;
    try {
      return await this.#map(item, index);
    } finally {
      const wake = this.#waiting.shift();
      if (wake) wake(); // hand the slot over without lowering the count
      else this.#running--;
    }
  }
}

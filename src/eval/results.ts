/**
 * The evaluation results in the original `VLLMEditorEvaluation` layout.
 *
 * `results.json` is a list of chunks (one per `N` sequential edits), each a list of per-sample
 * results:
 * ```json
 * [[{ "index": 0,
 *     "reliability": [{ "image": "...", "prompt": "...", "target": "...", "edit_time": 0.1,
 *                       "predict_after_edit": "...", "acc": 1, "greedy_acc": 1 }],
 *     "generality": { "text_rephrase": [{ ..., "acc": 1, "greedy_acc": 1 }],
 *                     "image_rephrase": [{ ... }] },
 *     "locality": { "text_loc": [{ ..., "predict_before_edit": "...", "acc": 1, ... }],
 *                   "image_loc": [{ ... }] },
 *     "portability": { "one_hop": [{ ... }] } }]]
 * ```
 * (`portability` only for VLKEB's one-hop file). `mean_results.json` is
 * `{ "total_mean": M & { "total_edit_n" }, "split_mean": [M & { "sequential_edit_n" }] }` where
 * `M` averages every numeric field of each group as the original's `get_mean_results`:
 * `{ "reliability": { "acc", "greedy_acc", "edit_time" }, "generality": { "text_rephrase":
 * { "acc", "greedy_acc" }, ... }, "locality": { ... }, "portability": { ... } }`. Floats are
 * rounded to 4 decimals when saved, as the original's `save_results`.
 *
 * @module
 */

/** One scored example: its inputs, the decoded predictions and numeric metrics. */
export type ExampleResult = Record<string, string | number | null>;

/** The results of one sample (one edit). */
export interface SampleResult {
  /** The record's index in its annotation file. */
  readonly index: number;
  /** The request (one per sample): `acc` is Rel., `edit_time` the edit's wall time (s). */
  readonly reliability: ExampleResult[];
  /** `text_rephrase` (T-Gen.) and `image_rephrase` (M-Gen.). */
  readonly generality: Record<string, ExampleResult[]>;
  /** `text_loc` (T-Loc.) and `image_loc` (M-Loc.). */
  readonly locality: Record<string, ExampleResult[]>;
  /** `one_hop` (VLKEB portability), when the data has it. */
  readonly portability?: Record<string, ExampleResult[]>;
}

/** The means of one group of examples: numeric field -> mean. */
export type MeanFields = Record<string, number>;

/** Means in the original `get_mean_results` layout. */
export interface MeanResults {
  /** Means over the requests. */
  reliability: MeanFields;
  /** Means per generality kind. */
  generality: Record<string, MeanFields>;
  /** Means per locality kind. */
  locality: Record<string, MeanFields>;
  /** Means per portability kind (only when some sample has portability). */
  portability?: Record<string, MeanFields>;
  /** Edits in the chunk (`split_mean`). */
  sequential_edit_n?: number;
  /** Edits in all chunks (`total_mean`). */
  total_edit_n?: number;
}

/** The contents of `mean_results.json`. */
export interface MeanResultsFile {
  /** Means over every sample. */
  readonly total_mean: MeanResults;
  /** Means per chunk. */
  readonly split_mean: MeanResults[];
}

/** Sums and counts of numeric fields. */
class Accumulator {
  readonly #sums = new Map<string, [number, number]>();
  add(result: ExampleResult): void {
    for (const [k, v] of Object.entries(result)) {
      if (typeof v !== "number") continue;
      const s = this.#sums.get(k) ?? [0, 0];
      s[0] += v;
      s[1] += 1;
      this.#sums.set(k, s);
    }
  }
  means(): MeanFields {
    return Object.fromEntries([...this.#sums].map(([k, [sum, n]]) => [k, sum / n]));
  }
}

/** The means of every numeric field per group over `results` (see the module doc). */
export function meanResults(results: readonly SampleResult[]): MeanResults {
  const rel = new Accumulator();
  const groups = {
    generality: new Map<string, Accumulator>(),
    locality: new Map<string, Accumulator>(),
    portability: new Map<string, Accumulator>(),
  };
  for (const r of results) {
    for (const x of r.reliability) rel.add(x);
    for (const g of ["generality", "locality", "portability"] as const) {
      for (const [kind, list] of Object.entries(r[g] ?? {})) {
        let acc = groups[g].get(kind);
        if (acc === undefined) groups[g].set(kind, acc = new Accumulator());
        for (const x of list) acc.add(x);
      }
    }
  }
  const of = (m: Map<string, Accumulator>) =>
    Object.fromEntries([...m].map(([k, a]) => [k, a.means()]));
  const out: MeanResults = {
    reliability: rel.means(),
    generality: of(groups.generality),
    locality: of(groups.locality),
  };
  if (groups.portability.size > 0) out.portability = of(groups.portability);
  return out;
}

/** `mean_results.json` of chunked results: per-chunk means and the means over all. */
export function meanResultsFile(chunks: readonly (readonly SampleResult[])[]): MeanResultsFile {
  const split_mean = chunks.map((c) => ({ ...meanResults(c), sequential_edit_n: c.length }));
  const total_mean = {
    ...meanResults(chunks.flat()),
    total_edit_n: chunks.reduce((n, c) => n + c.length, 0),
  };
  return { total_mean, split_mean };
}

/** A deep copy of `value` with every non-integer number rounded to `decimals` places. */
export function roundFloats<T>(value: T, decimals = 4): T {
  const f = 10 ** decimals;
  const walk = (v: unknown): unknown => {
    if (typeof v === "number") return Number.isInteger(v) ? v : Math.round(v * f) / f;
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === "object") {
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    }
    return v;
  };
  return walk(value) as T;
}

/**
 * Splits `items` into chunks of `n`, as the original's `split_data`: a last chunk with fewer
 * than `n` items is left out. Returns the chunks and how many items were left out.
 */
export function chunksOf<T>(items: readonly T[], n: number): { chunks: T[][]; dropped: number } {
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`chunk size must be >= 1, got ${n}`);
  const chunks: T[][] = [];
  for (let i = 0; i + n <= items.length; i += n) chunks.push(items.slice(i, i + n));
  return { chunks, dropped: items.length % n };
}

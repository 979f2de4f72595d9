/**
 * Traced graphs as runners: {@linkcode compileRunner} compiles a graph (`compileGraph`: in
 * memory, or into the graph cache when it references weight files) and loads it as a
 * `ModelRunner` (`src/runtime/runner.ts`: in-thread or in a device Worker, inputs picked from
 * a larger set of feeds, runs and fed bytes counted); {@linkcode RunnerCache} keeps one runner
 * per graph, found by a caller's key or by the compiled model's hash, for the editor and the
 * VLLMs alike.
 *
 * The runner itself lives in `src/runtime/` (it knows sessions, not graphs); this file is the
 * graph-aware side, since `src/runtime/` may not import `src/graph/`.
 *
 * @example
 * ```ts ignore
 * const runners = new RunnerCache({ device: "cpu" });
 * const out = await runners.run("forward", () => ({ graph, outputs: { logits } }), feeds);
 * console.log(runners.stats.runs, runners.stats.fedBytes);
 * await runners.close();
 * ```
 *
 * @module
 */
import type { RunOptions, ValueSpec } from "../runtime/session.ts";
import { ModelRunner, type Placement, RunStats } from "../runtime/runner.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { compileGraph, relativeTo } from "./compile.ts";
import { toModelProto } from "./onnx.ts";
import type { Graph, Value } from "./ir.ts";

/** The input specs of a traced graph, in declaration order, for a session's `inputsSpec`. */
export function inputsSpecOf(graph: Graph): ValueSpec[] {
  return [...graph.inputs].map(([name, v]) => ({ name, dtype: v.dtype, shape: v.shape }));
}

/** A traced graph and the outputs to compile. */
export interface TracedGraph {
  /** The graph. */
  readonly graph: Graph;
  /** Outputs by name. */
  readonly outputs: Readonly<Record<string, Value>>;
}

/** Options of {@linkcode compileRunner}. */
export interface CompileRunnerOptions extends Placement {
  /** Session name in error messages (default `"model"`). */
  readonly name?: string;
  /** Graph cache directory for graphs that reference weight files (see `graphCacheRoot`). */
  readonly cacheDir?: string;
  /**
   * Keep the model in memory (no graph cache entry) with its external initializers located
   * relative to this directory, where ONNX Runtime then memory-maps them from; every file
   * they reference must be inside it. For files that come and go with the session (an expert
   * pool's segments), which a cache entry's hard links would keep alive.
   */
  readonly externalDataDir?: string;
  /** Counters the runner adds its runs to, besides its own. */
  readonly totals?: RunStats;
}

/**
 * Compiles the part of `graph` that `outputs` need and loads it where `options` place it; feeds
 * are validated against the graph's declared inputs.
 */
export async function compileRunner(
  graph: Graph,
  outputs: Readonly<Record<string, Value>>,
  options: CompileRunnerOptions = {},
): Promise<ModelRunner> {
  const dir = options.externalDataDir;
  const { model } = dir === undefined
    ? await compileGraph(graph, outputs, { cacheDir: options.cacheDir })
    : { model: toModelProto(graph, outputs, { externalLocation: relativeTo(dir) }) };
  return await ModelRunner.load(model, { ...options, inputsSpec: inputsSpecOf(graph) });
}

/** Compiles `outputs` of `graph` (see {@linkcode compileRunner}), runs it once on `feeds`, releases it. */
export async function runOnce(
  graph: Graph,
  outputs: Readonly<Record<string, Value>>,
  feeds: Readonly<Record<string, Tensor>>,
  options: CompileRunnerOptions = {},
): Promise<Record<string, Tensor>> {
  const runner = await compileRunner(graph, outputs, options);
  try {
    return await runner.run(feeds);
  } finally {
    await runner.release();
  }
}

/** Options of {@linkcode RunnerCache}. */
export type RunnerCacheOptions = Placement & {
  /** Graph cache directory (see `graphCacheRoot`). */
  readonly cacheDir?: string;
  /** The counters of {@linkcode RunnerCache.stats} (default: new ones), to share with others. */
  readonly stats?: RunStats;
};

/**
 * One runner per graph, placed as the options say: {@linkcode RunnerCache.get} traces and
 * compiles a graph on the first use of its key, and two keys whose graphs compile to the same
 * model (same hash) share one session. {@linkcode RunnerCache.stats} counts the runs of all.
 */
export class RunnerCache {
  /** The runs of every runner of the cache (and of the caches sharing these counters). */
  readonly stats: RunStats;
  readonly #options: RunnerCacheOptions;
  readonly #byKey = new Map<string, Promise<ModelRunner>>();
  readonly #byHash = new Map<string, Promise<ModelRunner>>();

  /** A cache whose runners are placed by `options` (default: in-thread on the CPU). */
  constructor(options: RunnerCacheOptions = {}) {
    this.#options = options;
    this.stats = options.stats ?? new RunStats();
  }

  /** The runner of `key`, tracing the graph with `build` and compiling it on first use. */
  get(key: string, build: () => TracedGraph): Promise<ModelRunner> {
    let runner = this.#byKey.get(key);
    if (runner === undefined) {
      runner = this.#load(key, build);
      this.#byKey.set(key, runner);
      runner.catch(() => this.#byKey.delete(key));
    }
    return runner;
  }

  /**
   * Runs the graph of `key` (see {@linkcode RunnerCache.get}) on its inputs taken from `feeds`;
   * returns `outputNames` (default: all outputs of the graph). `options` as
   * `ModelRunner.run`'s (feeds handed to a device Worker).
   */
  async run(
    key: string,
    build: () => TracedGraph,
    feeds: Readonly<Record<string, Tensor>>,
    outputNames?: readonly string[],
    options?: RunOptions,
  ): Promise<Record<string, Tensor>> {
    return await (await this.get(key, build)).run(feeds, outputNames, options);
  }

  async #load(key: string, build: () => TracedGraph): Promise<ModelRunner> {
    const { graph, outputs } = build();
    const { model, hash } = await compileGraph(graph, outputs, {
      cacheDir: this.#options.cacheDir,
    });
    let runner = this.#byHash.get(hash);
    if (runner === undefined) {
      runner = ModelRunner.load(model, {
        device: this.#options.device,
        deviceOptions: this.#options.deviceOptions,
        worker: this.#options.worker,
        name: key,
        inputsSpec: inputsSpecOf(graph),
        totals: this.stats,
      });
      this.#byHash.set(hash, runner);
      runner.catch(() => this.#byHash.delete(hash));
    }
    return await runner;
  }

  /** Releases every runner; the cache can be used again afterwards (it recompiles). */
  async close(): Promise<void> {
    const runners = [...this.#byHash.values()];
    this.#byKey.clear();
    this.#byHash.clear();
    for (const r of runners) {
      try {
        await (await r).release();
      } catch {
        // a runner that failed to load has nothing to release
      }
    }
  }
}

/**
 * {@linkcode ModelRunner}: one compiled model (an `.onnx` path or its bytes) loaded on a
 * device, in the calling thread or in that device's Worker, run on a larger set of named
 * tensors of which it takes only its own inputs (lowering drops the inputs its outputs do not
 * need, so a graph over all editor parameters may use only a few). Every run is counted in
 * {@linkcode RunStats}: how many runs, and how many bytes of feeds they were given.
 *
 * Compiling graphs lives above this file: `src/graph/runner.ts` turns a traced graph into a
 * `ModelRunner` (`compileRunner`) and keeps one per graph (`RunnerCache`).
 *
 * @example
 * ```ts ignore
 * const mm = await ModelRunner.load(bytes, { device: "cpu", name: "mm" });
 * const { y } = await mm.run({ a, b, unused }); // `unused` is not fed
 * console.log(mm.stats.runs, mm.stats.lastFedBytes);
 * await mm.release();
 * ```
 *
 * @module
 */
import type { Tensor } from "../tensor/tensor.ts";
import type { DeviceOptions, DeviceSpec } from "./device.ts";
import type { DeviceWorker } from "./device_worker.ts";
import {
  type LoadOptions,
  LocalSession,
  type RunOptions,
  type Session,
  sessionLabel,
} from "./session.ts";

/** Where a runner's session runs. */
export interface Placement {
  /** Device of an in-thread session (default `"cpu"`); ignored when `worker` is given. */
  readonly device?: string | DeviceSpec;
  /** Tunables of an in-thread session's device. */
  readonly deviceOptions?: DeviceOptions;
  /**
   * Run the session in this device's Worker instead of on the calling thread, so that runs on
   * different devices overlap (`session.run` blocks the thread it runs on).
   */
  readonly worker?: DeviceWorker;
}

/** Options of {@linkcode ModelRunner.load}. */
export interface ModelRunnerOptions extends Placement, LoadOptions {
  /** Counters the runner adds its runs to, besides its own (e.g. the totals of a cache). */
  readonly totals?: RunStats;
}

/** Counts of the runs of one runner (or of several, when shared). */
export class RunStats {
  /** Number of runs. */
  runs = 0;
  /** Bytes of the tensors fed, over all runs. */
  fedBytes = 0;
  /** Bytes of the tensors fed to the last run. */
  lastFedBytes = 0;

  /** Counts one run that was fed `bytes` bytes. */
  record(bytes: number): void {
    this.runs += 1;
    this.fedBytes += bytes;
    this.lastFedBytes = bytes;
  }
}

/** A loaded model that picks its inputs from a larger set of feeds (see the module docs). */
export class ModelRunner {
  /** The session. */
  readonly session: Session;
  /** This runner's runs. */
  readonly stats: RunStats = new RunStats();
  readonly #totals?: RunStats;

  private constructor(session: Session, totals?: RunStats) {
    this.session = session;
    this.#totals = totals;
  }

  /**
   * Loads `model` (an `.onnx` path or its bytes) in `options.worker`, or else in the calling
   * thread on `options.device` (default `"cpu"`).
   */
  static async load(
    model: string | Uint8Array,
    options: ModelRunnerOptions = {},
  ): Promise<ModelRunner> {
    const load = {
      name: options.name,
      inputsSpec: options.inputsSpec,
      externalDataDir: options.externalDataDir,
    };
    const session = options.worker
      ? await options.worker.load(model, load)
      : await LocalSession.create(model, {
        ...load,
        device: options.device ?? "cpu",
        deviceOptions: options.deviceOptions,
      });
    return new ModelRunner(session, options.totals);
  }

  /** Session name in error messages. */
  get name(): string {
    return this.session.name;
  }

  /** The device the session runs on. */
  get device(): DeviceSpec {
    return this.session.device;
  }

  /** The model's input names: those of the feeds that {@linkcode ModelRunner.run} passes on. */
  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  /** The model's output names. */
  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  /**
   * The model's inputs taken from `feeds` (other entries are left out); throws naming the
   * session and the input when one is missing.
   */
  pick(feeds: Readonly<Record<string, Tensor>>): Record<string, Tensor> {
    const mine: Record<string, Tensor> = {};
    for (const name of this.session.inputNames) {
      const t = feeds[name];
      if (t === undefined) {
        throw new Error(
          `${sessionLabel(this.session.name, this.session.device)}: no feed for input '${name}'`,
        );
      }
      mine[name] = t;
    }
    return mine;
  }

  /**
   * Runs the model with its inputs taken from `feeds` ({@linkcode ModelRunner.pick}); returns
   * `outputNames` (default: all outputs), labelled for `f32`/`output` of `outputs.ts`.
   * `options.transferInputs` hands the named feeds' buffers to a device Worker (see
   * `RunOptions`).
   */
  async run(
    feeds: Readonly<Record<string, Tensor>>,
    outputNames?: readonly string[],
    options?: RunOptions,
  ): Promise<Record<string, Tensor>> {
    const mine = this.pick(feeds);
    let bytes = 0;
    for (const t of Object.values(mine)) bytes += t.data.byteLength;
    const out = await this.session.run(mine, outputNames, options);
    this.stats.record(bytes);
    this.#totals?.record(bytes);
    return out;
  }

  /** Frees the session; later runs reject. */
  release(): Promise<void> {
    return this.session.release();
  }
}

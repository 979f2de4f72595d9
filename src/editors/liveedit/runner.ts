/**
 * A traced graph compiled into an ONNX Runtime session, fed from a pool of named tensors of
 * which it takes only its own inputs (lowering drops inputs the outputs do not need, so a
 * graph over all editor parameters may use only a few).
 *
 * @module
 */
import type { Graph } from "../../graph/ir.ts";
import { type Outputs, toModelProto } from "../../graph/onnx.ts";
import type { DeviceSpec } from "../../runtime/device.ts";
import { inputsSpecOf, LocalSession } from "../../runtime/session.ts";
import type { Tensor } from "../../tensor/tensor.ts";

/** Where and under which name a runner runs. */
export interface RunnerOptions {
  /** Device (default `"cpu"`). */
  readonly device?: string | DeviceSpec;
  /** Session name in error messages. */
  readonly name?: string;
}

/** A compiled graph that picks its inputs from a larger set of feeds. */
export class GraphRunner {
  readonly #session: LocalSession;

  private constructor(session: LocalSession) {
    this.#session = session;
  }

  /** Lowers the part of `graph` that `outputs` need and loads it on the device. */
  static async create(graph: Graph, outputs: Outputs, options: RunnerOptions = {}) {
    const bytes = toModelProto(graph, outputs);
    const session = await LocalSession.create(bytes, {
      device: options.device ?? "cpu",
      name: options.name,
      inputsSpec: inputsSpecOf(graph),
    });
    return new GraphRunner(session);
  }

  /** The model's input names (those of `feeds` that {@linkcode GraphRunner.run} passes on). */
  get inputNames(): readonly string[] {
    return this.#session.inputNames;
  }

  /** Runs with the model's inputs taken from `feeds` (extra entries are ignored). */
  run(feeds: Readonly<Record<string, Tensor>>, outputNames?: readonly string[]) {
    const mine: Record<string, Tensor> = {};
    for (const name of this.#session.inputNames) {
      const t = feeds[name];
      if (t === undefined) {
        throw new Error(`session '${this.#session.name}': no feed for input '${name}'`);
      }
      mine[name] = t;
    }
    return this.#session.run(mine, outputNames);
  }

  /** Frees the session. */
  release(): Promise<void> {
    return this.#session.release();
  }
}

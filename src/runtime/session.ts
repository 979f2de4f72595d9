/**
 * Sessions: the {@linkcode Session} interface shared by in-thread and worker sessions, feed
 * validation, and {@linkcode LocalSession}, the one place that runs an ONNX Runtime session
 * (device workers run `LocalSession`s too).
 *
 * @module
 */
import * as ort from "onnxruntime-node";
import type { DType } from "../tensor/dtype.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { dtypeOfOrt, fromOrt, toOrt } from "../tensor/ort.ts";
import {
  assertDeviceAvailable,
  type DeviceOptions,
  type DeviceSpec,
  explainProviderError,
  sessionOptions,
  toDeviceSpec,
} from "./device.ts";
import { disableOrtTelemetry } from "./telemetry.ts";
import { labelOutputs } from "./outputs.ts";

/** Name, dtype and shape of a model input or output; string dims are named dynamic dims. */
export interface ValueSpec {
  /** Input or output name. */
  readonly name: string;
  /** Element type. */
  readonly dtype: DType;
  /** Static sizes and named dynamic dims (`""` for an unnamed dynamic dim). */
  readonly shape: readonly (number | string)[];
}

/** Options for loading a model into a session. */
export interface LoadOptions {
  /** Name used in error messages. Default: the model file's name, or `"model"` for bytes. */
  readonly name?: string;
  /**
   * Expected inputs, e.g. `inputsSpecOf` (`src/graph/runner.ts`) of the traced graph. Their
   * shapes are used to validate feeds instead of ONNX Runtime's metadata; dtype and rank must
   * match the model's.
   * Entries for inputs the model does not have are ignored.
   */
  readonly inputsSpec?: readonly ValueSpec[];
  /**
   * For a model given as bytes whose initializers are external data: the directory their
   * locations are relative to (ONNX Runtime's `session.model_external_initializers_file_folder_path`).
   * The files are memory-mapped, not copied, as for a model loaded from a path.
   */
  readonly externalDataDir?: string;
}

/** Options of {@linkcode Session.run}. */
export interface RunOptions {
  /**
   * For a session in a device worker: hand the buffers of the feeds (all with `true`, or those
   * named) to the worker instead of copying them; those feed tensors are unusable afterwards
   * (their buffers are detached). Default `false`. An in-thread session copies nothing anyway
   * and ignores it.
   */
  readonly transferInputs?: boolean | readonly string[];
}

/** What a loaded model is, apart from running it: the fields of {@linkcode Session}. */
export type SessionSpec = Pick<
  Session,
  "name" | "device" | "inputNames" | "outputNames" | "inputs" | "outputs"
>;

/**
 * A loaded model that can be run: {@linkcode LocalSession} (in the calling thread) and
 * `RemoteSession` (in a device worker). Both validate feeds here before they run.
 */
export abstract class Session {
  /** Name used in error messages. */
  readonly name: string;
  /** The device the session runs on. */
  readonly device: DeviceSpec;
  /** Model input names, in model order. */
  readonly inputNames: readonly string[];
  /** Model output names, in model order. */
  readonly outputNames: readonly string[];
  /** Input dtypes and shapes that feeds are validated against. */
  readonly inputs: readonly ValueSpec[];
  /** Output dtypes and shapes as the model declares them. */
  readonly outputs: readonly ValueSpec[];
  /** `"session 'mm' on cpu:0"`, the prefix of the session's errors. */
  protected readonly label: string;

  /** Takes the model's spec. */
  protected constructor(spec: SessionSpec) {
    this.name = spec.name;
    this.device = spec.device;
    this.inputNames = spec.inputNames;
    this.outputNames = spec.outputNames;
    this.inputs = spec.inputs;
    this.outputs = spec.outputs;
    this.label = sessionLabel(spec.name, spec.device);
  }

  /**
   * Runs the model on `feeds`; returns `outputNames` (default: all outputs), labelled with the
   * session for `f32` and `output` (`outputs.ts`).
   */
  abstract run(
    feeds: Record<string, Tensor>,
    outputNames?: readonly string[],
    options?: RunOptions,
  ): Promise<Record<string, Tensor>>;

  /** Frees the session; later runs reject. */
  abstract release(): Promise<void>;

  /**
   * Throws, naming the session, when it was released (`open` false), when `feeds` do not fit
   * the inputs ({@linkcode checkFeeds}) or an output name is unknown.
   */
  protected checkRun(
    open: boolean,
    feeds: Record<string, Tensor>,
    outputNames: readonly string[] | undefined,
  ): void {
    if (!open) throw new Error(`${this.label} was released`);
    checkFeeds(this.label, this.inputs, feeds);
    if (outputNames !== undefined) checkOutputNames(this.label, this.outputs, outputNames);
  }
}

const fmtShape = (shape: readonly (number | string)[]) =>
  `[${shape.map((d) => d === "" ? "?" : d).join(", ")}]`;

/** `"session 'mm' on cpu:0"`: the prefix of every error about a session. */
export function sessionLabel(name: string, device: DeviceSpec): string {
  return `session '${name}' on ${device.name}`;
}

/**
 * Throws unless `feeds` has exactly the inputs of `inputs`, each with the right dtype, rank and
 * static dims, and each named dynamic dim has one size across all inputs of the run.
 */
export function checkFeeds(
  label: string,
  inputs: readonly ValueSpec[],
  feeds: Record<string, Tensor>,
): void {
  const names = inputs.map((s) => s.name);
  for (const name of Object.keys(feeds)) {
    if (!names.includes(name)) {
      throw new Error(`${label}: unknown input '${name}'; the inputs are ${names.join(", ")}`);
    }
  }
  const bound = new Map<string, { size: number; input: string }>();
  for (const spec of inputs) {
    const t = feeds[spec.name];
    const want = `${spec.dtype}${fmtShape(spec.shape)}`;
    if (t === undefined) throw new Error(`${label}: missing input '${spec.name}' (${want})`);
    const got = `${t.dtype}${fmtShape(t.shape)}`;
    const bad = (why: string) =>
      new Error(`${label}: input '${spec.name}' expects ${want}, got ${got}: ${why}`);
    if (t.dtype !== spec.dtype) throw bad(`dtype ${t.dtype} is not ${spec.dtype}`);
    if (t.rank !== spec.shape.length) throw bad(`rank ${t.rank} is not ${spec.shape.length}`);
    spec.shape.forEach((dim, i) => {
      const size = t.shape[i];
      if (typeof dim === "number") {
        if (size !== dim) throw bad(`dim ${i} is ${size}, expected ${dim}`);
      } else if (dim !== "") {
        const prev = bound.get(dim);
        if (prev === undefined) bound.set(dim, { size, input: spec.name });
        else if (prev.size !== size) {
          throw bad(
            `dim ${i} '${dim}' is ${size} but input '${prev.input}' has '${dim}' = ${prev.size}`,
          );
        }
      }
    });
  }
}

/** Throws unless every name in `requested` is one of `outputs`. */
export function checkOutputNames(
  label: string,
  outputs: readonly ValueSpec[],
  requested: readonly string[],
): void {
  const names = outputs.map((s) => s.name);
  for (const name of requested) {
    if (!names.includes(name)) {
      throw new Error(`${label}: unknown output '${name}'; the outputs are ${names.join(", ")}`);
    }
  }
}

function specsFromMetadata(
  label: string,
  what: "input" | "output",
  metadata: readonly ort.InferenceSession.ValueMetadata[],
): ValueSpec[] {
  return metadata.map((m) => {
    if (!m.isTensor) {
      throw new Error(`${label}: ${what} '${m.name}' is not a tensor, which is not supported`);
    }
    let dtype: DType;
    try {
      dtype = dtypeOfOrt(m.type);
    } catch (e) {
      throw new Error(`${label}: ${what} '${m.name}': ${(e as Error).message}`);
    }
    return { name: m.name, dtype, shape: [...m.shape] };
  });
}

/**
 * Replaces the model's input specs by the declared ones, after checking that dtype, rank and
 * static dims agree. Declared inputs the model lacks are ignored (lowering drops inputs that no output
 * depends on); model inputs not declared keep ONNX Runtime's metadata.
 */
function mergeInputsSpec(
  label: string,
  model: readonly ValueSpec[],
  declared: readonly ValueSpec[] | undefined,
): readonly ValueSpec[] {
  return model.map((m) => {
    const d = declared?.find((s) => s.name === m.name);
    if (d === undefined) return m;
    const clash = m.shape.some((x, i) =>
      typeof x === "number" && typeof d.shape[i] === "number" && x !== d.shape[i]
    );
    if (m.dtype !== d.dtype || m.shape.length !== d.shape.length || clash) {
      throw new Error(
        `${label}: inputsSpec declares input '${d.name}' as ${d.dtype}${fmtShape(d.shape)} ` +
          `but the model has ${m.dtype}${fmtShape(m.shape)}`,
      );
    }
    return { name: m.name, dtype: d.dtype, shape: [...d.shape] };
  });
}

/** The default session name for a model path or bytes. */
export function defaultModelName(model: string | Uint8Array): string {
  return typeof model === "string" ? model.split(/[\\/]/).pop()! : "model";
}

/**
 * A session run on the calling thread. `run` blocks the thread while ONNX Runtime computes;
 * use a device worker (`DeviceWorker`) to run several sessions in parallel.
 *
 * @example
 * ```ts ignore
 * const s = await LocalSession.create("model.onnx", { device: "cpu" });
 * const { y } = await s.run({ x });
 * await s.release();
 * ```
 */
export class LocalSession extends Session {
  #session: ort.InferenceSession | null;

  private constructor(
    session: ort.InferenceSession,
    name: string,
    device: DeviceSpec,
    inputsSpec: readonly ValueSpec[] | undefined,
  ) {
    const label = sessionLabel(name, device);
    super({
      name,
      device,
      inputNames: [...session.inputNames],
      outputNames: [...session.outputNames],
      inputs: mergeInputsSpec(
        label,
        specsFromMetadata(label, "input", session.inputMetadata),
        inputsSpec,
      ),
      outputs: specsFromMetadata(label, "output", session.outputMetadata),
    });
    this.#session = session;
  }

  /**
   * Loads `model` (an `.onnx` path or its bytes) on `device` (default `"cpu"`). Rejects, naming
   * the session and device, when the model cannot be loaded or the device cannot be used. The
   * first call of a process switches ONNX Runtime's telemetry off (see `telemetry.ts`).
   */
  static async create(
    model: string | Uint8Array,
    options: LoadOptions & {
      readonly device?: string | DeviceSpec;
      readonly deviceOptions?: DeviceOptions;
    } = {},
  ): Promise<LocalSession> {
    const device = toDeviceSpec(options.device ?? "cpu");
    const name = options.name ?? defaultModelName(model);
    const label = sessionLabel(name, device);
    assertDeviceAvailable(device);
    disableOrtTelemetry();
    const opts = sessionOptions(device, options.deviceOptions);
    if (options.externalDataDir !== undefined) {
      const extra = (opts.extra ?? {}) as { session?: Record<string, string> };
      opts.extra = {
        ...extra,
        session: {
          ...extra.session,
          model_external_initializers_file_folder_path: options.externalDataDir,
        },
      };
    }
    let session: ort.InferenceSession;
    try {
      // two calls because `create` is overloaded on path vs bytes
      session = typeof model === "string"
        ? await ort.InferenceSession.create(model, opts)
        : await ort.InferenceSession.create(model, opts);
    } catch (e) {
      throw new Error(`${label}: could not create the session: ${explainProviderError(device, e)}`);
    }
    try {
      return new LocalSession(session, name, device, options.inputsSpec);
    } catch (e) {
      await session.release();
      throw e;
    }
  }

  /** Validates `feeds` (see {@linkcode checkFeeds}) and runs the model. */
  async run(
    feeds: Record<string, Tensor>,
    outputNames?: readonly string[],
  ): Promise<Record<string, Tensor>> {
    const session = this.#session;
    this.checkRun(session !== null, feeds, outputNames);
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [k, t] of Object.entries(feeds)) {
      ortFeeds[k] = toOrt(t, `${this.label}: input '${k}'`);
    }
    let result: ort.InferenceSession.OnnxValueMapType;
    try {
      result = await session!.run(ortFeeds, outputNames ?? this.outputNames);
    } catch (e) {
      throw new Error(`${this.label}: run failed: ${e instanceof Error ? e.message : e}`);
    }
    const out: Record<string, Tensor> = {};
    for (const [k, v] of Object.entries(result)) {
      out[k] = fromOrt(v as ort.Tensor, `${this.label}: output '${k}'`);
    }
    return labelOutputs(this.label, out);
  }

  /** Frees the ONNX Runtime session. Releasing twice is a no-op. */
  async release(): Promise<void> {
    const session = this.#session;
    this.#session = null;
    await session?.release();
  }
}

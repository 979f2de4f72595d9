/**
 * The main-thread side of a device: {@linkcode DeviceWorker} starts one Worker per device that
 * owns the device's sessions, and {@linkcode RemoteSession} runs them from the main thread.
 *
 * ONNX Runtime's `session.run()` blocks the thread that calls it, so sessions on one thread
 * never overlap; sessions on different device workers do.
 *
 * @module
 */
import type { Tensor } from "../tensor/tensor.ts";
import {
  assertDeviceAvailable,
  type DeviceOptions,
  type DeviceSpec,
  toDeviceSpec,
} from "./device.ts";
import {
  fromWire,
  type Reply,
  type Request,
  type SessionInfo,
  toWire,
  type WireTensor,
} from "./protocol.ts";
import { labelOutputs } from "./outputs.ts";
import { defaultModelName, type LoadOptions, type RunOptions, Session } from "./session.ts";

/** A {@linkcode Request} without its `id` (which the channel assigns). */
export type RequestBody = Request extends infer R ? R extends Request ? Omit<R, "id"> : never
  : never;

/** How a {@linkcode RemoteSession} reaches its worker. */
export interface Channel {
  /** Posts a request (transferring `transfer`) and resolves with the worker's reply value. */
  request(body: RequestBody, transfer?: ArrayBuffer[]): Promise<unknown>;
  /** False once the worker is closed. */
  isOpen(): boolean;
}

/**
 * A worker serving one device. Create it with {@linkcode DeviceWorker.open}, load models with
 * {@linkcode DeviceWorker.load}, and {@linkcode DeviceWorker.close} it when done.
 *
 * @example
 * ```ts ignore
 * const cpu0 = await DeviceWorker.open("cpu:0");
 * const s = await cpu0.load(modelBytes, { name: "mm" });
 * const { y } = await s.run({ a, b });
 * cpu0.close();
 * ```
 */
export class DeviceWorker {
  /** The device this worker serves. */
  readonly device: DeviceSpec;
  #worker: Worker | null;
  #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  #nextId = 1;
  #channel: Channel = {
    request: (body, transfer) => this.#request(body, transfer),
    isOpen: () => this.#worker !== null,
  };

  private constructor(device: DeviceSpec) {
    this.device = device;
    this.#worker = new Worker(new URL("./worker.ts", import.meta.url).href, { type: "module" });
    this.#worker.onmessage = (e: MessageEvent<Reply>) => {
      const r = e.data;
      const p = this.#pending.get(r.id);
      this.#pending.delete(r.id);
      if (r.ok) p?.resolve(r.value);
      else p?.reject(new Error(r.message));
    };
    this.#worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      this.#shutdown(`${device.name}: device worker crashed: ${e.message}`);
    };
  }

  /**
   * Starts the worker for `device` (a string such as `"cpu:0"` or a parsed spec). Rejects before
   * starting anything when the device is unknown or cannot be used (e.g. `cuda:N` without the
   * CUDA execution provider).
   */
  static async open(
    device: string | DeviceSpec,
    options: DeviceOptions = {},
  ): Promise<DeviceWorker> {
    const spec = toDeviceSpec(device);
    assertDeviceAvailable(spec);
    const w = new DeviceWorker(spec);
    try {
      await w.#request({ op: "init", device: spec, options });
    } catch (e) {
      w.close();
      throw e;
    }
    return w;
  }

  /** True until {@linkcode DeviceWorker.close} (or a worker crash). */
  get open(): boolean {
    return this.#worker !== null;
  }

  /**
   * Loads `model` (an `.onnx` path or its bytes; bytes are copied to the worker) into a session
   * on this device.
   */
  async load(model: string | Uint8Array, options: LoadOptions = {}): Promise<RemoteSession> {
    const name = options.name ?? defaultModelName(model);
    const info = await this.#request({
      op: "load",
      model,
      name,
      inputsSpec: options.inputsSpec,
      externalDataDir: options.externalDataDir,
    });
    return new RemoteSession(this.device, info as SessionInfo, this.#channel);
  }

  /** Terminates the worker; pending and later requests reject. Closing twice is a no-op. */
  close(): void {
    this.#shutdown(`${this.device.name}: device worker closed`);
  }

  /** Same as {@linkcode DeviceWorker.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  #shutdown(reason: string): void {
    this.#worker?.terminate();
    this.#worker = null;
    for (const p of this.#pending.values()) p.reject(new Error(reason));
    this.#pending.clear();
  }

  #request(body: RequestBody, transfer: ArrayBuffer[] = []): Promise<unknown> {
    const worker = this.#worker;
    if (worker === null) {
      return Promise.reject(new Error(`${this.device.name}: device worker is closed`));
    }
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      worker.postMessage({ ...body, id } as Request, transfer);
    });
  }
}

/** A session owned by a {@linkcode DeviceWorker}; feeds are validated before they are sent. */
export class RemoteSession extends Session {
  #channel: Channel;
  #handle: number | null;

  /** Made by {@linkcode DeviceWorker.load}. */
  constructor(device: DeviceSpec, info: SessionInfo, channel: Channel) {
    super({ ...info, device });
    this.#channel = channel;
    this.#handle = info.handle;
  }

  /** Validates `feeds`, runs the model in the worker and returns the outputs. */
  async run(
    feeds: Record<string, Tensor>,
    outputNames?: readonly string[],
    options: RunOptions = {},
  ): Promise<Record<string, Tensor>> {
    const handle = this.#handle;
    this.checkRun(handle !== null, feeds, outputNames);
    const transfer: ArrayBuffer[] = [];
    const handOver = options.transferInputs ?? false;
    const wire = Object.fromEntries(
      Object.entries(feeds).map((
        [k, t],
      ) => [
        k,
        toWire(t, transfer, handOver === true || (handOver !== false && handOver.includes(k))),
      ]),
    );
    const out = await this.#channel.request(
      { op: "run", handle: handle!, feeds: wire, outputNames },
      transfer,
    );
    const result: Record<string, Tensor> = {};
    for (const [k, w] of Object.entries(out as Record<string, WireTensor>)) result[k] = fromWire(w);
    return labelOutputs(this.label, result);
  }

  /** Frees the session in the worker. Releasing twice, or after the worker closed, is a no-op. */
  async release(): Promise<void> {
    const handle = this.#handle;
    this.#handle = null;
    if (handle !== null && this.#channel.isOpen()) {
      await this.#channel.request({ op: "release", handle });
    }
  }
}

/**
 * Entry module of a device worker: owns the {@linkcode LocalSession}s of one device and answers
 * the {@linkcode Request}s of its `DeviceWorker`. Not imported directly; started with
 * `new Worker(new URL("./worker.ts", import.meta.url).href, { type: "module" })`.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import type { DeviceOptions, DeviceSpec } from "./device.ts";
import { fromWire, type Reply, type Request, type SessionInfo, toWire } from "./protocol.ts";
import { LocalSession } from "./session.ts";

let device: DeviceSpec | null = null;
let options: DeviceOptions = {};
const sessions = new Map<number, LocalSession>();
let nextHandle = 1;

function session(handle: number): LocalSession {
  const s = sessions.get(handle);
  if (s === undefined) throw new Error(`${device?.name}: no session with handle ${handle}`);
  return s;
}

/** Serves one request; returns the value to reply with and the buffers to transfer. */
async function serve(req: Request): Promise<[unknown, ArrayBuffer[]]> {
  if (req.op === "init") {
    device = req.device;
    options = req.options;
    return [null, []];
  }
  if (device === null) throw new Error("device worker used before init");
  if (req.op === "load") {
    const s = await LocalSession.create(req.model, {
      device,
      deviceOptions: options,
      name: req.name,
      inputsSpec: req.inputsSpec,
      externalDataDir: req.externalDataDir,
    });
    const handle = nextHandle++;
    sessions.set(handle, s);
    const info: SessionInfo = {
      handle,
      name: s.name,
      inputNames: s.inputNames,
      outputNames: s.outputNames,
      inputs: s.inputs,
      outputs: s.outputs,
    };
    return [info, []];
  }
  if (req.op === "run") {
    const feeds = Object.fromEntries(Object.entries(req.feeds).map(([k, w]) => [k, fromWire(w)]));
    const out = await session(req.handle).run(feeds, req.outputNames);
    const transfer: ArrayBuffer[] = [];
    const wire = Object.fromEntries(
      Object.entries(out).map(([k, t]) => [k, toWire(t, transfer, true)]),
    );
    return [wire, transfer];
  }
  await session(req.handle).release();
  sessions.delete(req.handle);
  return [null, []];
}

self.onmessage = async (e: MessageEvent<Request>) => {
  const { id } = e.data;
  try {
    const [value, transfer] = await serve(e.data);
    self.postMessage({ id, ok: true, value } satisfies Reply, transfer);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    self.postMessage({ id, ok: false, message } satisfies Reply);
  }
};

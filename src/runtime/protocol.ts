/**
 * Messages between a `DeviceWorker` (main thread) and its worker (`worker.ts`), and the plain
 * `{ dtype, shape, buffer }` form tensors travel in.
 *
 * @module
 */
import { allocate, type DType, type TypedArray } from "../tensor/dtype.ts";
import { Tensor } from "../tensor/tensor.ts";
import type { DeviceOptions, DeviceSpec } from "./device.ts";
import type { SessionSpec, ValueSpec } from "./session.ts";

/** A tensor as posted between threads: its bytes own a whole `ArrayBuffer`. */
export interface WireTensor {
  /** Element type. */
  readonly dtype: DType;
  /** Dimensions. */
  readonly shape: readonly number[];
  /** Exactly the tensor's bytes. */
  readonly buffer: ArrayBuffer;
}

/** What the worker reports about a loaded session: its spec (the device aside) and handle. */
export interface SessionInfo extends Omit<SessionSpec, "device"> {
  /** Worker-side handle of the session. */
  readonly handle: number;
}

/** A request to the worker; `id` pairs it with its {@linkcode Reply}. */
export type Request =
  | {
    readonly op: "init";
    readonly id: number;
    readonly device: DeviceSpec;
    readonly options: DeviceOptions;
  }
  | {
    readonly op: "load";
    readonly id: number;
    readonly model: string | Uint8Array;
    readonly name: string;
    readonly inputsSpec?: readonly ValueSpec[];
    readonly externalDataDir?: string;
  }
  | {
    readonly op: "run";
    readonly id: number;
    readonly handle: number;
    readonly feeds: Record<string, WireTensor>;
    readonly outputNames?: readonly string[];
  }
  | { readonly op: "release"; readonly id: number; readonly handle: number };

/** The worker's answer to the request with the same `id`. */
export type Reply =
  | { readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly id: number; readonly ok: false; readonly message: string };

/**
 * Converts a tensor for posting and pushes onto `transfer` the buffers that may be moved rather
 * than copied. A tensor whose data spans its whole buffer is posted as is: with `handOver` its
 * buffer is transferred (the tensor becomes unusable), otherwise `postMessage` copies it. A view
 * into a larger (or shared) buffer is copied here once and the copy is transferred.
 */
export function toWire(t: Tensor, transfer: ArrayBuffer[], handOver = false): WireTensor {
  const d = t.data;
  if (
    d.buffer instanceof ArrayBuffer && d.byteOffset === 0 && d.byteLength === d.buffer.byteLength
  ) {
    if (handOver) transfer.push(d.buffer);
    return { dtype: t.dtype, shape: t.shape, buffer: d.buffer };
  }
  const buffer = new Uint8Array(d.buffer, d.byteOffset, d.byteLength).slice().buffer;
  transfer.push(buffer);
  return { dtype: t.dtype, shape: t.shape, buffer };
}

/** Rebuilds a tensor from its posted form (no copy). */
export function fromWire(w: WireTensor): Tensor {
  const ctor = allocate(w.dtype, 0).constructor as new (b: ArrayBuffer) => TypedArray;
  return new Tensor(w.dtype, w.shape, new ctor(w.buffer));
}

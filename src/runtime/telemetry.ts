/**
 * ONNX Runtime's telemetry, switched off before the first session.
 *
 * The native library of onnxruntime-node (1.30 on Linux and macOS) contains Microsoft's 1DS
 * telemetry client. When the process creates its first session, that client writes
 * `mat-debug-<pid>.log` and `.ses` into `$TMPDIR` (or `/tmp`), a device id and an SQLite event
 * cache under `$XDG_CACHE_HOME/Microsoft/DeveloperTools/.onnxruntime`, and tries to upload
 * events; the files in `$TMPDIR` are never removed. The Node binding has no option for it; the
 * runtime's documented opt-out is the environment variable `ORT_DISABLE_TELEMETRY=1`, read once
 * when ONNX Runtime sets up its environment, which happens with the first session of the
 * process. {@linkcode disableOrtTelemetry} sets it, unless the user set it already.
 *
 * @module
 */

/** The environment variable ONNX Runtime reads to disable its telemetry. */
export const ORT_TELEMETRY_ENV = "ORT_DISABLE_TELEMETRY";

/**
 * Sets `ORT_DISABLE_TELEMETRY=1` for this process unless it is set already (a value the user
 * chose is kept). Call it before the first ONNX Runtime session; {@linkcode LocalSession.create}
 * does. Without the permission to write the environment (`--allow-env`) it does nothing.
 *
 * @example
 * ```ts
 * import { disableOrtTelemetry, ORT_TELEMETRY_ENV } from "./telemetry.ts";
 * disableOrtTelemetry();
 * if (Deno.env.get(ORT_TELEMETRY_ENV) === undefined) throw new Error("not set");
 * ```
 */
export function disableOrtTelemetry(): void {
  try {
    if (Deno.env.get(ORT_TELEMETRY_ENV) === undefined) Deno.env.set(ORT_TELEMETRY_ENV, "1");
  } catch {
    // No permission to read or write the environment: ONNX Runtime keeps its default.
  }
}

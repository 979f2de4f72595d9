/**
 * Device strings, the ONNX Runtime session options for each device, and the checks that a
 * device can be used at all.
 *
 * Accepted device strings:
 *
 * - `cpu` — the CPU with one intra-op thread per core (`navigator.hardwareConcurrency`).
 * - `cpu:N` — an independent CPU device slot N (N ≥ 0) with one intra-op thread by default, so
 *   that `cpu:0` and `cpu:1`, each served by its own worker, run in parallel on two cores. N is
 *   a name for the slot, not a core binding.
 * - `cuda:N` — CUDA device N through ONNX Runtime's CUDA execution provider
 *   (`executionProviders: [{ name: "cuda", deviceId: N }]`).
 * - `webgpu` — ONNX Runtime's WebGPU execution provider. `webgpu:N` is rejected: the
 *   onnxruntime-node WebGPU provider has no device-index option (it picks the adapter itself), so
 *   an index would be silently ignored.
 *
 * A device that cannot be used fails loudly; nothing ever falls back to the CPU.
 *
 * @module
 */
import type { InferenceSession } from "onnxruntime-node";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** A parsed device string. `name` is the canonical string, e.g. `"cuda:1"`. */
export type DeviceSpec =
  | { readonly kind: "cpu"; readonly index: number | null; readonly name: string }
  | { readonly kind: "cuda"; readonly index: number; readonly name: string }
  | { readonly kind: "webgpu"; readonly index: null; readonly name: string };

/** ONNX Runtime graph optimisation levels. */
export type GraphOptimizationLevel = "disabled" | "basic" | "extended" | "all";

/** Tunables applied to every session created on a device. */
export interface DeviceOptions {
  /**
   * Intra-op threads per session. Default: 1 for `cpu:N`, all cores for `cpu`; ignored by the
   * GPU providers except for the CPU fallback kernels ONNX Runtime places on the CPU.
   */
  readonly intraOpThreads?: number;
  /** Graph optimisation level. Default `"all"`. */
  readonly graphOptimizationLevel?: GraphOptimizationLevel;
  /**
   * Let the intra-op worker threads spin between ops instead of sleeping (ONNX Runtime's
   * `session.intra_op.allow_spinning`). Default false: a spinning worker keeps a core busy
   * after each run, which on a machine with few cores starves the calling thread's own work
   * between runs (tokenizing, routing on the host) and every other process. Measured on 2
   * cores (bench:e2e): 4.4 → 9.3 training steps/s and 4.3 s → 0.9 s for the evaluation without
   * spinning; routes at BLIP-2 dims lose nothing.
   */
  readonly allowSpinning?: boolean;
}

/** The command that installs onnxruntime-node's CUDA execution provider (it runs its install script). */
export const CUDA_INSTALL_COMMAND = "deno install --allow-scripts=npm:onnxruntime-node";

const DEVICE_RE = /^(cpu|cuda|webgpu)(?::(0|[1-9][0-9]*))?$/;

/**
 * Parses a device string (see the module documentation for the accepted forms).
 *
 * @example
 * ```ts
 * import { parseDevice } from "./device.ts";
 * const d = parseDevice("cuda:1");
 * if (d.kind !== "cuda" || d.index !== 1) throw new Error("parse");
 * ```
 */
export function parseDevice(device: string): DeviceSpec {
  const m = DEVICE_RE.exec(device);
  const kind = m?.[1];
  const index = m?.[2] === undefined ? null : Number(m[2]);
  if (kind === "cpu") return { kind, index, name: device };
  if (kind === "cuda" && index !== null) return { kind, index, name: device };
  if (kind === "webgpu" && index === null) return { kind, index, name: device };
  if (kind === "webgpu") {
    throw new Error(
      `unsupported device '${device}': onnxruntime-node's WebGPU execution provider has no ` +
        `device index option, use 'webgpu'`,
    );
  }
  throw new Error(`unknown device '${device}': expected cpu, cpu:N, cuda:N or webgpu`);
}

/** Accepts a device string or an already parsed spec. */
export function toDeviceSpec(device: string | DeviceSpec): DeviceSpec {
  return typeof device === "string" ? parseDevice(device) : device;
}

/** The ONNX Runtime session options for sessions on `device`. */
export function sessionOptions(
  device: DeviceSpec,
  options: DeviceOptions = {},
): InferenceSession.SessionOptions {
  const threads = options.intraOpThreads ??
    (device.kind === "cpu" && device.index === null ? navigator.hardwareConcurrency : 1);
  if (!Number.isInteger(threads) || threads < 1) {
    throw new Error(`${device.name}: intraOpThreads must be an integer >= 1, got ${threads}`);
  }
  const executionProviders: InferenceSession.ExecutionProviderConfig[] = device.kind === "cuda"
    ? [{ name: "cuda", deviceId: device.index }]
    : device.kind === "webgpu"
    ? [{ name: "webgpu" }]
    : ["cpu"];
  return {
    executionProviders,
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: options.graphOptimizationLevel ?? "all",
    extra: { session: { "intra_op.allow_spinning": options.allowSpinning ? "1" : "0" } },
  };
}

/** Shared libraries the CUDA execution provider needs next to the onnxruntime-node binding. */
const CUDA_LIBRARIES = ["libonnxruntime_providers_shared.so", "libonnxruntime_providers_cuda.so"];

/**
 * The folder holding onnxruntime-node's native binding for this platform (where ONNX Runtime
 * loads execution provider libraries from), found through the import map.
 */
export function ortBindingDir(): string {
  const arch = Deno.build.arch === "x86_64" ? "x64" : "arm64";
  const platform = Deno.build.os === "windows" ? "win32" : Deno.build.os;
  const entry = import.meta.resolve("onnxruntime-node"); // …/onnxruntime-node/dist/index.js
  return fileURLToPath(new URL(`../bin/napi-v6/${platform}/${arch}/`, entry));
}

/**
 * Where the CUDA execution provider libraries should be and which of them are missing. Only
 * linux/x64 builds of onnxruntime-node can have them.
 */
export function cudaProviderStatus(): { readonly dir: string; readonly missing: string[] } {
  const dir = ortBindingDir();
  if (Deno.build.os !== "linux" || Deno.build.arch !== "x86_64") {
    return { dir, missing: [...CUDA_LIBRARIES] };
  }
  return { dir, missing: CUDA_LIBRARIES.filter((f) => !existsSync(dir + f)) };
}

/**
 * Throws when `device` certainly cannot be used, before any session is made: for `cuda:N`, when
 * the CUDA execution provider libraries are not installed. Other failures (no GPU, missing CUDA
 * runtime, no WebGPU adapter) show up when a session is created; see
 * {@linkcode explainProviderError}.
 */
export function assertDeviceAvailable(device: DeviceSpec): void {
  if (device.kind !== "cuda") return;
  const { dir, missing } = cudaProviderStatus();
  if (missing.length === 0) return;
  const where = Deno.build.os === "linux" && Deno.build.arch === "x86_64"
    ? `${missing.join(" and ")} not found in ${dir}`
    : `onnxruntime-node ships it for linux/x64 only, this is ${Deno.build.os}/${Deno.build.arch}`;
  throw new Error(
    `${device.name}: the CUDA execution provider of onnxruntime-node is not installed (${where}). ` +
      `It is downloaded by onnxruntime-node's install script: run \`${CUDA_INSTALL_COMMAND}\` ` +
      `on a machine with network access and CUDA 12.`,
  );
}

/**
 * Explains an error thrown by ONNX Runtime while creating a session on `device`: says what the
 * WebGPU or CUDA provider is missing, followed by ONNX Runtime's own message. Other errors give
 * ONNX Runtime's message unchanged.
 */
export function explainProviderError(device: DeviceSpec, error: unknown): string {
  const message = (error instanceof Error ? error.message : String(error)).trim();
  if (device.kind === "webgpu" && /adapter/i.test(message)) {
    return `ONNX Runtime's WebGPU execution provider found no usable GPU adapter ` +
      `(it needs a GPU with a Vulkan, Metal or D3D12 driver): ${message}`;
  }
  if (device.kind === "cuda" && /shared library|libcu|cuda/i.test(message)) {
    return `the CUDA execution provider is installed but failed to initialise ` +
      `(it needs an NVIDIA GPU, the CUDA 12 runtime and cuDNN 9): ${message}`;
  }
  return message;
}

/**
 * The device groups of `replicas` data-parallel replicas: `devices` cut, in order, into
 * `replicas` groups of equal size (each holds one copy of the model, placed over its group).
 * Throws naming the counts when they do not divide, or when a device repeats.
 *
 * @example
 * ```ts
 * import { replicaGroups } from "./device.ts";
 * const g = replicaGroups(["cuda:0", "cuda:1", "cuda:2", "cuda:3"], 2);
 * if (g[1].join() !== "cuda:2,cuda:3") throw new Error(g.join(" | "));
 * ```
 */
export function replicaGroups(devices: readonly string[], replicas: number): string[][] {
  if (!Number.isSafeInteger(replicas) || replicas < 1) {
    throw new Error(`--replicas must be an integer >= 1, got ${replicas}`);
  }
  const repeated = devices.find((d, i) => devices.indexOf(d) !== i);
  if (repeated !== undefined && replicas > 1) {
    throw new Error(`--replicas ${replicas}: device ${repeated} is named twice in -dvc`);
  }
  if (devices.length % replicas !== 0 || devices.length === 0) {
    throw new Error(
      `--replicas ${replicas} needs a multiple of ${replicas} devices in -dvc (equal groups), ` +
        `got ${devices.length}: ${devices.join(",")}`,
    );
  }
  const size = devices.length / replicas;
  return Array.from({ length: replicas }, (_, k) => devices.slice(k * size, (k + 1) * size));
}

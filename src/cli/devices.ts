/**
 * The device flags of the tasks: `-dvc` is the list of devices one copy of the model is placed
 * on (`cpu`, `cpu:N`, `cuda:N`, `webgpu`; see `src/runtime/device.ts`), given as one value with
 * commas (`-dvc cuda:0,cuda:1`) or several values (`-dvc cuda:0 cuda:1`), and `-edvc` the list
 * of devices of the frozen backbone's data-processing copy (train). A bare index `N` means
 * `cuda:N` in `-dvc` (the original's `-dvc 0,1`, CUDA indices) and device `N` of `-dvc`'s kind
 * in `-edvc` (the original's `-edvc 0 1`).
 *
 * @example
 * ```ts
 * import { parseDeviceFlags } from "./devices.ts";
 * const d = parseDeviceFlags(["0", "1"], ["2", "cuda:3"]);
 * if (d.devices.join() !== "cuda:0,cuda:1") throw new Error(d.devices.join());
 * if (d.extraDevices.join() !== "cuda:2,cuda:3") throw new Error(d.extraDevices.join());
 * ```
 *
 * The placement flags say how the model is split over `-dvc`'s devices: `--split-layers`
 * (the first decoder layer of every stage but the first), `--max-memory` (one size, or one per
 * device: `32GiB`, `500MB`, `1.5G`, bytes) and `--editor-device` ({@linkcode parsePlacementFlags}).
 *
 * @module
 */
import type { PlacementOptions } from "../models/vllm/place.ts";
import { type DeviceSpec, parseDevice, replicaGroups } from "../runtime/device.ts";
import { UsageError } from "./flags.ts";

/** Parsed `-dvc` and `-edvc`. */
export interface DeviceFlags {
  /** The devices of the model (`-dvc`), canonical, in order; at least one. */
  readonly devices: readonly string[];
  /** The devices of the data-processing copy (`-edvc`), canonical, without repeats. */
  readonly extraDevices: readonly string[];
}

/**
 * Checks and expands `-dvc` (a device list; one string is one device) and `-edvc`; throws a
 * {@linkcode UsageError} naming the flag and the bad device.
 */
export function parseDeviceFlags(
  devices: string | readonly string[],
  extra: readonly string[] = [],
): DeviceFlags {
  const check = (flag: string, d: string): DeviceSpec => {
    try {
      return parseDevice(d);
    } catch (error) {
      throw new UsageError(`${flag}: ${(error as Error).message}`);
    }
  };
  const list = typeof devices === "string" ? [devices] : devices;
  if (list.length === 0) throw new UsageError("-dvc: no device given");
  const main = list.map((d) => check("-dvc", /^\d+$/.test(d) ? `cuda:${Number(d)}` : d));
  const out: string[] = [];
  for (const item of extra) {
    const name = /^\d+$/.test(item) ? `${main[0].kind}:${Number(item)}` : item;
    const spec = check("-edvc", name);
    if (!out.includes(spec.name)) out.push(spec.name);
  }
  return { devices: main.map((d) => d.name), extraDevices: out };
}

const UNITS: Readonly<Record<string, number>> = {
  "": 1,
  b: 1,
  k: 2 ** 10,
  kb: 1e3,
  kib: 2 ** 10,
  m: 2 ** 20,
  mb: 1e6,
  mib: 2 ** 20,
  g: 2 ** 30,
  gb: 1e9,
  gib: 2 ** 30,
  t: 2 ** 40,
  tb: 1e12,
  tib: 2 ** 40,
};

/**
 * Bytes of a size such as `32GiB`, `32G` (binary), `500MB` (decimal), `1.5gib` or `1000`
 * (bytes); throws a {@linkcode UsageError} naming `flag` for anything else.
 *
 * @example
 * ```ts
 * import { parseByteSize } from "./devices.ts";
 * if (parseByteSize("32GiB") !== 32 * 2 ** 30 || parseByteSize("2MB") !== 2e6) throw new Error();
 * ```
 */
export function parseByteSize(value: string, flag = "--max-memory"): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value);
  const unit = m ? UNITS[m[2].toLowerCase()] : undefined;
  const bytes = unit === undefined ? NaN : Math.floor(Number(m![1]) * unit);
  if (!(bytes > 0)) {
    throw new UsageError(
      `${flag}: ${JSON.stringify(value)} is not a size (e.g. 32GiB, 24G, 500MB or bytes)`,
    );
  }
  return bytes;
}

/** The placement flags as parsed strings (`--split-layers`, `--max-memory`, `--editor-device`). */
export interface PlacementFlags {
  /** `--split-layers`. */
  readonly splitLayers?: readonly string[];
  /** `--max-memory`. */
  readonly maxMemory?: readonly string[];
  /** `--editor-device`. */
  readonly editorDevice?: string;
}

/**
 * Checks the placement flags against `devices` (`-dvc`, parsed): `--split-layers` needs one
 * layer index per device after the first, `--editor-device` is a device (`N` is `cuda:N`);
 * throws a {@linkcode UsageError} naming the flag.
 */
export function parsePlacementFlags(
  flags: PlacementFlags,
  devices: readonly string[],
): PlacementOptions {
  let splitLayers: number[] | undefined;
  if (flags.splitLayers !== undefined) {
    splitLayers = flags.splitLayers.map((v) => {
      if (!/^\d+$/.test(v)) {
        throw new UsageError(`--split-layers: ${JSON.stringify(v)} is not a layer index`);
      }
      return Number(v);
    });
    if (splitLayers.length !== devices.length - 1) {
      throw new UsageError(
        `--split-layers: ${splitLayers.length} cuts for ${devices.length} devices of -dvc ` +
          `(give the first layer of every stage but the first: ${devices.length - 1})`,
      );
    }
  }
  const maxMemory = flags.maxMemory?.map((v) => parseByteSize(v));
  let editorDevice: string | undefined;
  if (flags.editorDevice !== undefined) {
    const d = flags.editorDevice;
    try {
      editorDevice = parseDevice(/^\d+$/.test(d) ? `cuda:${Number(d)}` : d).name;
    } catch (error) {
      throw new UsageError(`--editor-device: ${(error as Error).message}`);
    }
  }
  return { splitLayers, maxMemory, editorDevice };
}

/**
 * The device groups of `--replicas` over `devices` (`replicaGroups`: equal groups in order);
 * throws a {@linkcode UsageError} naming the counts when they do not divide.
 */
export function parseReplicaGroups(devices: readonly string[], replicas: number): string[][] {
  try {
    return replicaGroups(devices, replicas);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

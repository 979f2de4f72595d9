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
 * @module
 */
import { type DeviceSpec, parseDevice } from "../runtime/device.ts";
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

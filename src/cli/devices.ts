/**
 * The device flags of the tasks: `-dvc` is one device string (`cpu`, `cpu:N`, `cuda:N`,
 * `webgpu`; see `src/runtime/device.ts`), and `-edvc` a list of them, where a bare index `N`
 * (the original's `-edvc 0 1`, CUDA indices) means device `N` of `-dvc`'s kind.
 *
 * @example
 * ```ts
 * import { parseDeviceFlags } from "./devices.ts";
 * const d = parseDeviceFlags("cuda:0", ["1", "cuda:2"]);
 * if (d.extraDevices.join() !== "cuda:1,cuda:2") throw new Error(d.extraDevices.join());
 * ```
 *
 * @module
 */
import { parseDevice } from "../runtime/device.ts";
import { UsageError } from "./flags.ts";

/** Parsed `-dvc` and `-edvc`. */
export interface DeviceFlags {
  /** The main device, canonical. */
  readonly device: string;
  /** The extra devices, canonical, without repeats. */
  readonly extraDevices: readonly string[];
}

/** Checks and expands `-dvc` and `-edvc`; throws a {@linkcode UsageError} naming the bad one. */
export function parseDeviceFlags(device: string, extra: readonly string[] = []): DeviceFlags {
  const check = (flag: string, d: string) => {
    try {
      return parseDevice(d);
    } catch (error) {
      throw new UsageError(`${flag}: ${(error as Error).message}`);
    }
  };
  const main = check("-dvc", device);
  const out: string[] = [];
  for (const item of extra) {
    const name = /^\d+$/.test(item) ? `${main.kind}:${Number(item)}` : item;
    const spec = check("-edvc", name);
    if (!out.includes(spec.name)) out.push(spec.name);
  }
  return { device: main.name, extraDevices: out };
}

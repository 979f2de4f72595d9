/**
 * Placing an opened {@linkcode Vllm} on its devices: {@linkcode placeVllm} plans the stages
 * (`planPlacement` of `../placement.ts`, from the checkpoint's headers: nothing is loaded
 * before the plan fits), starts one device Worker per device and returns a
 * {@linkcode VllmRunner} over the stages, with the placement an editor's sessions should use
 * (the Worker of the stage holding the edit layer, or of `--editor-device`).
 *
 * On one device (and no other editor device, and no `workers`), everything runs in the calling
 * thread on that device, as an unplaced runner does.
 *
 * @example
 * ```ts ignore
 * const vllm = await loadVllm("models/llava-1.5-7b-hf", { device: "cuda:0" });
 * const placed = await placeVllm(vllm, { devices: ["cuda:0", "cuda:1"], maxMemory: [32 * 2 ** 30] });
 * console.log(formatPlacement(placed.plan).join("\n"));
 * const logits = (await placed.runner.forward(batch)).logits;
 * await placed.close();
 * ```
 *
 * @module
 */
import { paramInventoryOf } from "../backbones.ts";
import {
  type EditorNeed,
  type ModelPlacement,
  planPlacement,
  type ReserveSize,
} from "../placement.ts";
import { DeviceWorker } from "../../runtime/device_worker.ts";
import type { Placement } from "../../runtime/runner.ts";
import { VllmRunner } from "./runner.ts";
import type { Vllm } from "./vllm.ts";

/** How a model is placed, as the flags say it. */
export interface PlacementOptions {
  /** The first layer of every stage but the first (`--split-layers`); default balanced. */
  readonly splitLayers?: readonly number[];
  /** Bytes each device may use (`--max-memory`): one value for all, or one per device. */
  readonly maxMemory?: readonly number[];
  /** The editor's device (`--editor-device`); default: the stage holding the edit layer. */
  readonly editorDevice?: string;
}

/** Options of {@linkcode placeVllm}. */
export interface PlaceOptions extends PlacementOptions {
  /** The devices, one stage each, in order. */
  readonly devices: readonly string[];
  /** The editor's edit layer and bytes, when one runs with the model. */
  readonly editor?: Omit<EditorNeed, "device">;
  /** What the reserve for activations and the KV cache is sized for (see {@linkcode reserveFor}). */
  readonly reserve?: ReserveSize;
  /** Run in device Workers even on one device (so that the calling thread stays free). */
  readonly workers?: boolean;
  /** Graph cache directory. */
  readonly cacheDir?: string;
}

/** A placed VLLM (see {@linkcode placeVllm}). */
export interface PlacedVllm {
  /** The runner over the plan's stages. */
  readonly runner: VllmRunner;
  /** The plan. */
  readonly plan: ModelPlacement;
  /** Where an editor's sessions go: a device Worker, or in-thread on a device. */
  readonly editor: Placement;
  /** Releases the runner's sessions and stops the Workers (the VLLM stays open). */
  close(): Promise<void>;
}

/**
 * The reserve of `vllm` for `sequences` sequences: each of the image's tokens and 512 more,
 * at most the context length.
 */
export function reserveFor(vllm: Vllm, sequences: number): ReserveSize {
  return { sequences, tokens: Math.min(vllm.config.maxPositions, vllm.numImageTokens + 512) };
}

/**
 * Plans `vllm` on `options.devices` (throws, before any Worker starts, when the plan does not
 * fit `maxMemory`), starts the Workers and builds the runner (see the module docs).
 */
export async function placeVllm(vllm: Vllm, options: PlaceOptions): Promise<PlacedVllm> {
  const c = vllm.config;
  const plan = planPlacement({
    parts: await paramInventoryOf(vllm),
    shape: c,
    devices: options.devices,
    bytesPerParam: vllm.computeDtype === "f16" ? 2 : 4,
    editor: options.editor && { ...options.editor, device: options.editorDevice },
    splitLayers: options.splitLayers,
    maxMemory: options.maxMemory,
    reserve: options.reserve ?? reserveFor(vllm, 1),
  });
  const editorDevice = plan.editor?.device ?? options.devices[0];
  const names = [...new Set([...options.devices, editorDevice])];
  if (names.length === 1 && !options.workers) {
    const device = names[0];
    const runner = new VllmRunner(vllm, { device, cacheDir: options.cacheDir });
    return { runner, plan, editor: { device }, close: () => runner.close() };
  }
  const workers = new Map<string, DeviceWorker>();
  const stop = () => {
    for (const w of workers.values()) w.close();
  };
  try {
    for (const name of names) workers.set(name, await DeviceWorker.open(name));
  } catch (error) {
    stop();
    throw error;
  }
  const runner = new VllmRunner(vllm, {
    stages: plan.stages.map((s) => ({ from: s.from, to: s.to, worker: workers.get(s.device) })),
    cacheDir: options.cacheDir,
  });
  return {
    runner,
    plan,
    editor: { worker: workers.get(editorDevice) },
    close: async () => {
      try {
        await runner.close();
      } finally {
        stop();
      }
    },
  };
}

/**
 * Model weights as graph values that point into the checkpoint's `.safetensors` bytes
 * (external initializers: nothing is copied into the ONNX file or read into memory here).
 *
 * @module
 */
import type { DType } from "../tensor/dtype.ts";
import type { Graph, Value } from "../graph/ir.ts";
import { cast } from "../graph/ops.ts";
import type { Checkpoint, CheckpointTensorInfo } from "../io/sharded.ts";
import { didYouMean } from "../io/safetensors/suggest.ts";
import { type DeviceSpec, toDeviceSpec } from "../runtime/device.ts";

/**
 * The dtype a model computes in: f32 on CPU, f16 on GPUs where the checkpoint is f16 (see
 * {@linkcode computeDtypeFor}). Graph inputs and outputs stay f32 either way.
 */
export type ComputeDType = "f32" | "f16";

/**
 * The compute dtype for a model whose weights are `weights` run on `device`: `"f16"` on a GPU
 * (`cuda:N`, `webgpu`) when the checkpoint's float weights are f16
 * ({@linkcode WeightStore.floatDtype}), else `"f32"` (always on CPU, and for f32, bf16 and
 * f64 checkpoints). Throws for a malformed device string.
 *
 * @example
 * ```ts ignore
 * const store = await WeightStore.open(checkpoint);
 * computeDtypeFor("cuda:0", store); // "f16" for an f16 checkpoint
 * computeDtypeFor("cpu", store); // "f32"
 * ```
 */
export function computeDtypeFor(
  device: string | DeviceSpec,
  weights: Pick<WeightStore, "floatDtype">,
): ComputeDType {
  const gpu = toDeviceSpec(device).kind !== "cpu";
  return gpu && weights.floatDtype === "f16" ? "f16" : "f32";
}

/**
 * The tensors of one checkpoint, indexed once, handed out as graph values. One store serves
 * many graphs; within a graph each weight becomes a single initializer.
 */
export class WeightStore {
  /** Where the weights came from, for error messages. */
  readonly source: string;
  /** Dtype weights are cast to inside graphs. */
  readonly computeDtype: ComputeDType;
  readonly #infos: Map<string, CheckpointTensorInfo>;
  readonly #perGraph = new WeakMap<Graph, Map<string, Value>>();

  private constructor(source: string, infos: CheckpointTensorInfo[], computeDtype: ComputeDType) {
    this.source = source;
    this.computeDtype = computeDtype;
    this.#infos = new Map(infos.map((i) => [i.name, i]));
  }

  /** Indexes every tensor of `checkpoint` (reads shard headers only). */
  static async open(
    checkpoint: Checkpoint,
    computeDtype: ComputeDType = "f32",
  ): Promise<WeightStore> {
    return new WeightStore(checkpoint.path, await checkpoint.tensors(), computeDtype);
  }

  /**
   * The dtype in which the checkpoint stores most of its float weights (counted in elements),
   * or null when it has none.
   */
  get floatDtype(): DType | null {
    const elements = new Map<DType, number>();
    for (const info of this.#infos.values()) {
      if (!isFloatStored(info.dtype)) continue;
      const n = info.shape.reduce((a, d) => a * d, 1);
      elements.set(info.dtype, (elements.get(info.dtype) ?? 0) + n);
    }
    let best: DType | null = null;
    for (const [dtype, n] of elements) if (best === null || n > elements.get(best)!) best = dtype;
    return best;
  }

  /** True when the checkpoint has `name`. */
  has(name: string): boolean {
    return this.#infos.has(name);
  }

  /** Dtype and shape of `name` as stored; throws naming the checkpoint and key if absent. */
  info(name: string): CheckpointTensorInfo {
    const info = this.#infos.get(name);
    if (!info) {
      throw new Error(
        `${this.source}: checkpoint has no tensor '${name}'${didYouMean(name, this.#infos.keys())}`,
      );
    }
    return info;
  }

  /**
   * Weight `name` in graph `g`, cast to the compute dtype. With `shape`, throws when the stored
   * shape differs (naming the file and key).
   */
  get(g: Graph, name: string, shape?: readonly number[]): Value {
    const info = this.info(name);
    if (
      shape && (shape.length !== info.shape.length || shape.some((d, i) => d !== info.shape[i]))
    ) {
      throw new Error(
        `${info.file}: tensor '${name}' has shape [${info.shape.join(", ")}], expected [${
          shape.join(", ")
        }]`,
      );
    }
    let values = this.#perGraph.get(g);
    if (!values) this.#perGraph.set(g, values = new Map());
    const known = values.get(name);
    if (known) return known;
    const raw = g.external(name, info.dtype, info.shape, {
      path: info.file,
      offset: info.fileOffset,
      length: info.byteLength,
    });
    const v = isFloatStored(info.dtype) ? cast(raw, this.computeDtype) : raw;
    values.set(name, v);
    return v;
  }
}

function isFloatStored(dtype: DType): boolean {
  return dtype === "f32" || dtype === "f16" || dtype === "bf16" || dtype === "f64";
}

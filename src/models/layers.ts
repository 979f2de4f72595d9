/**
 * The small pieces every Hugging Face architecture here is made of: a linear layer and a
 * layer norm loaded by their published names (`<name>.weight`, `<name>.bias`, shapes checked
 * against the config), and activations by their config names (`hidden_act`).
 *
 * @example
 * ```ts ignore
 * const fc1 = loadLinear(g, store, "vision_model.encoder.layers.0.mlp.fc1", 3072, 768);
 * const y = activate("quick_gelu", dense(x, fc1));
 * ```
 *
 * @module
 */
import type { Graph, Value } from "../graph/ir.ts";
import * as op from "../graph/ops.ts";
import type { ConfigFields } from "./hf_config.ts";
import type { WeightStore } from "./weights.ts";

/** A PyTorch `nn.Linear`: weight `[out, in]`, optional bias `[out]`. */
export interface Linear {
  /** `[out, in]`. */
  readonly weight: Value;
  /** `[out]`, or null for `bias=False`. */
  readonly bias: Value | null;
}

/** A PyTorch `nn.LayerNorm` over the last axis. */
export interface LayerNorm {
  /** `[dim]`. */
  readonly weight: Value;
  /** `[dim]`. */
  readonly bias: Value;
  /** Epsilon added to the variance. */
  readonly eps: number;
}

/**
 * Loads `<name>.weight` `[outDim, inDim]` (and `<name>.bias` `[outDim]` unless `bias` is false)
 * into `g`; throws naming the checkpoint file and key when one is missing or has another shape.
 */
export function loadLinear(
  g: Graph,
  store: WeightStore,
  name: string,
  outDim: number,
  inDim: number,
  bias = true,
): Linear {
  return {
    weight: store.get(g, `${name}.weight`, [outDim, inDim]),
    bias: bias ? store.get(g, `${name}.bias`, [outDim]) : null,
  };
}

/** Loads `<name>.weight` and `<name>.bias` of shape `[dim]` into `g` (shapes checked). */
export function loadLayerNorm(
  g: Graph,
  store: WeightStore,
  name: string,
  dim: number,
  eps: number,
): LayerNorm {
  return {
    weight: store.get(g, `${name}.weight`, [dim]),
    bias: store.get(g, `${name}.bias`, [dim]),
    eps,
  };
}

/** `x Wᵀ + b`. */
export function dense(x: Value, layer: Linear): Value {
  return op.linear(x, layer.weight, layer.bias);
}

/** Layer norm of `x` over its last axis. */
export function norm(x: Value, layer: LayerNorm): Value {
  return op.layerNorm(x, layer.weight, layer.bias, layer.eps);
}

/** Activation names as Hugging Face configs spell them (`hidden_act`, `projector_hidden_act`). */
export const ACTIVATIONS = [
  "gelu",
  "quick_gelu",
  "gelu_new",
  "gelu_pytorch_tanh",
  "relu",
  "silu",
] as const;

/** One of {@linkcode ACTIVATIONS}. */
export type Activation = typeof ACTIVATIONS[number];

/**
 * Applies the activation `name`: `gelu` is exact (erf), `gelu_new` and `gelu_pytorch_tanh`
 * the tanh approximation, `quick_gelu` CLIP's `x σ(1.702 x)`.
 */
export function activate(name: Activation, x: Value): Value {
  switch (name) {
    case "gelu":
      return op.gelu(x, "none");
    case "gelu_new":
    case "gelu_pytorch_tanh":
      return op.gelu(x, "tanh");
    case "quick_gelu":
      return op.quickGelu(x);
    case "relu":
      return op.relu(x);
    case "silu":
      return op.silu(x);
  }
}

/**
 * `x` (size 1 on axis 0, e.g. a class embedding `[1, 1, D]` or query tokens `[1, Q, D]`)
 * repeated over the batch of `like` (`[batch, …]`), as PyTorch's `x.expand(batch, …)`.
 */
export function expandBatch(x: Value, like: Value): Value {
  if (x.shape[0] !== 1) throw new Error(`expandBatch: axis 0 of ${x.describe()} is not 1`);
  const rest = x.shape.map((_, i) => i).slice(1);
  const ones = rest.map(() => 1);
  // like[:, :1, :1, …] has shape [batch, 1, …, 1]; Expand broadcasts it against x.
  const batchOnly = op.slice(like, ones.map(() => 0), ones, rest);
  return op.expandLike(x, batchOnly);
}

/**
 * Checks that `pixels` is a float `[batch, channels, size, size]` image batch as `model`
 * expects; throws naming the model and both shapes.
 */
export function checkImageInput(
  model: string,
  pixels: Value,
  channels: number,
  size: number,
): void {
  const [, c, h, w] = pixels.shape;
  if (pixels.rank !== 4 || c !== channels || h !== size || w !== size) {
    throw new Error(
      `${model}: pixel values must be [batch, ${channels}, ${size}, ${size}], got ${pixels.describe()}`,
    );
  }
}

/** The sizes every vision-transformer config has. */
export interface VitGeometry {
  /** `hidden_size`. */
  readonly hiddenSize: number;
  /** `intermediate_size` of the MLP. */
  readonly intermediateSize: number;
  /** `num_hidden_layers`. */
  readonly numHiddenLayers: number;
  /** `num_attention_heads`. */
  readonly numAttentionHeads: number;
  /** `image_size`: the square input resolution. */
  readonly imageSize: number;
  /** `patch_size`: kernel and stride of the patch convolution. */
  readonly patchSize: number;
}

/**
 * Reads the sizes of a ViT config (all required) and checks that the heads divide the width
 * and the patch fits the image; throws naming the file and field.
 */
export function parseVitGeometry(fields: ConfigFields): VitGeometry {
  const g: VitGeometry = {
    hiddenSize: fields.int("hidden_size"),
    intermediateSize: fields.int("intermediate_size"),
    numHiddenLayers: fields.int("num_hidden_layers"),
    numAttentionHeads: fields.int("num_attention_heads"),
    imageSize: fields.int("image_size"),
    patchSize: fields.int("patch_size"),
  };
  if (g.hiddenSize % g.numAttentionHeads !== 0) {
    throw fields.error(
      "num_attention_heads",
      `(${g.numAttentionHeads}) must divide hidden_size (${g.hiddenSize})`,
    );
  }
  if (g.patchSize > g.imageSize) {
    throw fields.error("patch_size", `(${g.patchSize}) exceeds image_size`);
  }
  return g;
}

/** Number of patch tokens, `(image_size / patch_size)²` (the class token not counted). */
export function numPatches(config: Pick<VitGeometry, "imageSize" | "patchSize">): number {
  return Math.floor(config.imageSize / config.patchSize) ** 2;
}

/** The norms and MLP of a pre-LN vision-transformer layer (CLIP's and BLIP-2's). */
export interface PreLnLayer {
  /** `layer_norm1`, before attention. */
  readonly layerNorm1: LayerNorm;
  /** `layer_norm2`, before the MLP. */
  readonly layerNorm2: LayerNorm;
  /** `mlp.fc1`. */
  readonly fc1: Linear;
  /** `mlp.fc2`. */
  readonly fc2: Linear;
}

/**
 * One pre-LN encoder layer: `h = x + attention(LN1(x))`, then `h + fc2(act(fc1(LN2(h))))`;
 * `attention` is the architecture's own self-attention.
 */
export function preLnLayer(
  l: PreLnLayer,
  act: Activation,
  x: Value,
  attention: (x: Value) => Value,
): Value {
  const h = op.add(x, attention(norm(x, l.layerNorm1)));
  return op.add(h, dense(activate(act, dense(norm(h, l.layerNorm2), l.fc1)), l.fc2));
}

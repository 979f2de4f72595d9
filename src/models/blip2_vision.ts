/**
 * The BLIP-2 vision transformer (Hugging Face `Blip2VisionModel`, an EVA ViT).
 *
 * A patch convolution with bias turns the image into `(image_size / patch_size)²` patch tokens
 * (row-major); the class token `[1, 1, D]` is prepended and the position embedding
 * `[1, 1 + P, D]` added (no norm before the layers). Pre-LN layers: `layer_norm1` → fused
 * `qkv` projection (its bias is `cat(q_bias, 0, v_bias)`: keys get none) → attention →
 * `projection` → residual, `layer_norm2` → fc1 → `hidden_act` (exact GELU) → fc2 → residual.
 * `post_layernorm` normalises every token of the last layer: those are the image embeddings
 * the Q-Former attends to.
 *
 * Reading order: config, weights (loaded by their published names), blocks, the model.
 *
 * @example
 * ```ts ignore
 * const blip2 = await ConfigFields.read(`${dir}/config.json`);
 * const config = parseBlip2VisionConfig(blip2.section("vision_config"));
 * const g = new Graph();
 * const model = loadBlip2Vision(g, store, config); // keys vision_model.*
 * const pixels = g.input("pixel_values", "f32", ["batch", 3, 224, 224]);
 * const { lastHiddenState: imageEmbeds } = blip2Vision(model, pixels);
 * ```
 *
 * @module
 */
import type { Graph, Value } from "../graph/ir.ts";
import * as op from "../graph/ops.ts";
import { attend } from "./attention.ts";
import type { ConfigFields } from "./hf_config.ts";
import {
  type Activation,
  ACTIVATIONS,
  checkImageInput,
  dense,
  expandBatch,
  type LayerNorm,
  type Linear,
  loadLayerNorm,
  loadLinear,
  norm,
  numPatches,
  parseVitGeometry,
  type PreLnLayer,
  preLnLayer,
  type VitGeometry,
} from "./layers.ts";
import type { WeightStore } from "./weights.ts";

// ---------------------------------------------------------------------------------------------
// Config

/** The fields of a `Blip2VisionConfig` this model uses. */
export interface Blip2VisionConfig extends VitGeometry {
  /** `layer_norm_eps` (default 1e-6), for every layer norm. */
  readonly layerNormEps: number;
  /** `hidden_act` (default `gelu`, exact). */
  readonly hiddenAct: Activation;
  /** `qkv_bias` (default true): queries and values have a bias, keys never. */
  readonly qkvBias: boolean;
}

/**
 * Parses the `vision_config` section of a BLIP-2 `config.json` (or a `Blip2VisionModel`'s
 * whole config). Sizes are required; `layer_norm_eps`, `hidden_act` and `qkv_bias` default as
 * in Hugging Face. Throws naming the file and field.
 */
export function parseBlip2VisionConfig(fields: ConfigFields): Blip2VisionConfig {
  return {
    ...parseVitGeometry(fields),
    layerNormEps: fields.positive("layer_norm_eps", 1e-6),
    hiddenAct: fields.oneOf("hidden_act", ACTIVATIONS, "gelu"),
    qkvBias: fields.bool("qkv_bias", true),
  };
}

// ---------------------------------------------------------------------------------------------
// Weights

/** One encoder layer's weights. */
export interface Blip2EncoderLayer extends PreLnLayer {
  /** `self_attn.qkv`: `[3D, D]`, rows q, k, v; bias `cat(q_bias, 0, v_bias)` or none. */
  readonly qkv: Linear;
  /** `self_attn.projection`. */
  readonly projection: Linear;
  /** `mlp.fc2`. */
  readonly fc2: Linear;
}

/** A BLIP-2 ViT: its config and its weights as values of one graph. */
export interface Blip2VisionModel {
  /** The config the weights were checked against. */
  readonly config: Blip2VisionConfig;
  /** `embeddings.patch_embedding` (weight `[D, 3, p, p]`, bias `[D]`). */
  readonly patchEmbedding: Linear;
  /** `embeddings.class_embedding` `[1, 1, D]`. */
  readonly classEmbedding: Value;
  /** `embeddings.position_embedding` `[1, 1 + P, D]`. */
  readonly positionEmbedding: Value;
  /** `encoder.layers.*`. */
  readonly layers: readonly Blip2EncoderLayer[];
  /** `post_layernorm`. */
  readonly postLayerNorm: LayerNorm;
}

/**
 * The fused qkv bias of one layer: `<attn>qkv.bias` `[3D]` when the checkpoint stores it
 * fused, else `cat(<attn>q_bias, 0, <attn>v_bias)` (how Salesforce checkpoints store it).
 */
function loadQkvBias(g: Graph, store: WeightStore, attn: string, d: number): Value {
  if (store.has(`${attn}qkv.bias`)) return store.get(g, `${attn}qkv.bias`, [3 * d]);
  const q = store.get(g, `${attn}q_bias`, [d]);
  return op.concat([q, op.zerosLike(q), store.get(g, `${attn}v_bias`, [d])], 0);
}

/**
 * Loads the ViT's weights into `g` from keys `<prefix>embeddings.…`, `<prefix>encoder.…`,
 * `<prefix>post_layernorm.…` (`prefix` defaults to `"vision_model."`, as in
 * `Blip2ForConditionalGeneration`). Every shape is checked against `config`; a missing key or
 * a wrong shape throws naming the checkpoint file and key.
 */
export function loadBlip2Vision(
  g: Graph,
  store: WeightStore,
  config: Blip2VisionConfig,
  prefix = "vision_model.",
): Blip2VisionModel {
  const d = config.hiddenSize, p = config.patchSize, eps = config.layerNormEps;
  const linear = (name: string, out: number, inp: number) =>
    loadLinear(g, store, prefix + name, out, inp);
  const layerNorm = (name: string) => loadLayerNorm(g, store, prefix + name, d, eps);
  const layers = Array.from({ length: config.numHiddenLayers }, (_, i): Blip2EncoderLayer => {
    const l = `encoder.layers.${i}.`;
    const attn = `${prefix}${l}self_attn.`;
    return {
      layerNorm1: layerNorm(`${l}layer_norm1`),
      qkv: {
        weight: store.get(g, `${attn}qkv.weight`, [3 * d, d]),
        bias: config.qkvBias ? loadQkvBias(g, store, attn, d) : null,
      },
      projection: linear(`${l}self_attn.projection`, d, d),
      layerNorm2: layerNorm(`${l}layer_norm2`),
      fc1: linear(`${l}mlp.fc1`, config.intermediateSize, d),
      fc2: linear(`${l}mlp.fc2`, d, config.intermediateSize),
    };
  });
  return {
    config,
    patchEmbedding: {
      weight: store.get(g, `${prefix}embeddings.patch_embedding.weight`, [d, 3, p, p]),
      bias: store.get(g, `${prefix}embeddings.patch_embedding.bias`, [d]),
    },
    classEmbedding: store.get(g, `${prefix}embeddings.class_embedding`, [1, 1, d]),
    positionEmbedding: store.get(
      g,
      `${prefix}embeddings.position_embedding`,
      [1, numPatches(config) + 1, d],
    ),
    layers,
    postLayerNorm: layerNorm("post_layernorm"),
  };
}

// ---------------------------------------------------------------------------------------------
// Blocks

/** Class token, then patch tokens (row-major), plus position embeddings: `[b, 1 + P, D]`. */
function embeddings(m: Blip2VisionModel, pixels: Value): Value {
  const { hiddenSize: d, patchSize: p } = m.config;
  const { weight, bias } = m.patchEmbedding;
  const grid = op.conv(pixels, weight, bias, { strides: [p, p] }); // [b, D, h, w]
  const [b, , h, w] = grid.shape;
  const patches = op.transpose(op.reshape(grid, [b, d, (h as number) * (w as number)]), [0, 2, 1]);
  const cls = expandBatch(m.classEmbedding, patches);
  return op.add(op.concat([cls, patches], 1), m.positionEmbedding);
}

function selfAttention(m: Blip2VisionModel, l: Blip2EncoderLayer, x: Value): Value {
  const d = m.config.hiddenSize;
  const [q, k, v] = op.split(dense(x, l.qkv), [d, d, d], -1);
  return dense(attend(q, k, v, { heads: m.config.numAttentionHeads }), l.projection);
}

function encoderLayer(m: Blip2VisionModel, l: Blip2EncoderLayer, x: Value): Value {
  return preLnLayer(l, m.config.hiddenAct, x, (y) => selfAttention(m, l, y));
}

// ---------------------------------------------------------------------------------------------
// The model

/** What {@linkcode blip2Vision} computes, as in Hugging Face's `output_hidden_states=True`. */
export interface Blip2VisionOutput {
  /** `n + 1` values `[b, 1 + P, D]`: the embeddings, then each encoder layer's output. */
  readonly hiddenStates: readonly Value[];
  /** `post_layernorm` of the last layer's output: the image embeddings `[b, 1 + P, D]`. */
  readonly lastHiddenState: Value;
}

/** Runs the ViT on `pixels` `f32[batch, 3, image_size, image_size]` (already normalised). */
export function blip2Vision(m: Blip2VisionModel, pixels: Value): Blip2VisionOutput {
  checkImageInput("BLIP-2 vision", pixels, 3, m.config.imageSize);
  let x = embeddings(m, pixels);
  const hiddenStates = [x];
  for (const layer of m.layers) hiddenStates.push(x = encoderLayer(m, layer, x));
  return { hiddenStates, lastHiddenState: norm(x, m.postLayerNorm) };
}

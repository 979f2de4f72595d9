/**
 * The CLIP vision tower (Hugging Face `CLIPVisionModel`), as LLaVA uses it.
 *
 * A patch convolution without bias turns the image into `(image_size / patch_size)²` patch
 * tokens (row-major), a learned class token is prepended and learned position embeddings
 * added; `pre_layrnorm` (HF's spelling) normalises the embeddings; then pre-LN encoder layers
 * (`layer_norm1` → self-attention → residual, `layer_norm2` → fc1 → `hidden_act` → fc2 →
 * residual). `post_layernorm` applies only to the pooled class token.
 *
 * Reading order: config, weights (loaded by their published names), blocks (embeddings,
 * attention, MLP, layer), the tower, then the LLaVA feature selection.
 *
 * @example
 * ```ts ignore
 * const config = parseClipVisionConfig(await ConfigFields.read(`${dir}/config.json`));
 * const store = await WeightStore.open(await openCheckpoint(dir));
 * const g = new Graph();
 * const model = loadClipVision(g, store, config); // keys vision_model.*
 * const pixels = g.input("pixel_values", "f32", ["batch", 3, 224, 224]);
 * const { hiddenStates, pooled } = clipVision(model, pixels);
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

/** The fields of a `CLIPVisionConfig` this tower uses. */
export interface ClipVisionConfig extends VitGeometry {
  /** `num_channels` (default 3). */
  readonly numChannels: number;
  /** `layer_norm_eps` (default 1e-5). */
  readonly layerNormEps: number;
  /** `hidden_act` (default `quick_gelu`). */
  readonly hiddenAct: Activation;
}

/**
 * Parses a `CLIPVisionConfig`: the whole `config.json` of a `CLIPVisionModel`, or the
 * `vision_config` section of a LLaVA or CLIP config. Sizes are required; `num_channels`,
 * `layer_norm_eps` and `hidden_act` default as in Hugging Face. Throws naming the file and
 * field.
 */
export function parseClipVisionConfig(fields: ConfigFields): ClipVisionConfig {
  return {
    ...parseVitGeometry(fields),
    numChannels: fields.int("num_channels", 3),
    layerNormEps: fields.positive("layer_norm_eps", 1e-5),
    hiddenAct: fields.oneOf("hidden_act", ACTIVATIONS, "quick_gelu"),
  };
}

// ---------------------------------------------------------------------------------------------
// Weights

/** One encoder layer's weights. */
export interface ClipEncoderLayer extends PreLnLayer {
  /** `self_attn.q_proj`. */
  readonly qProj: Linear;
  /** `self_attn.k_proj`. */
  readonly kProj: Linear;
  /** `self_attn.v_proj`. */
  readonly vProj: Linear;
  /** `self_attn.out_proj`. */
  readonly outProj: Linear;
  /** `mlp.fc2`. */
  readonly fc2: Linear;
}

/** A CLIP vision tower: its config and its weights as values of one graph. */
export interface ClipVisionModel {
  /** The config the weights were checked against. */
  readonly config: ClipVisionConfig;
  /** `embeddings.patch_embedding.weight` `[D, C, p, p]` (no bias). */
  readonly patchEmbedding: Value;
  /** `embeddings.class_embedding` `[D]`. */
  readonly classEmbedding: Value;
  /** `embeddings.position_embedding.weight` `[patches + 1, D]`. */
  readonly positionEmbedding: Value;
  /** `pre_layrnorm`. */
  readonly preLayerNorm: LayerNorm;
  /** `encoder.layers.*`. */
  readonly layers: readonly ClipEncoderLayer[];
  /** `post_layernorm` (pooled output only). */
  readonly postLayerNorm: LayerNorm;
}

/**
 * Loads the tower's weights into `g` from keys `<prefix>embeddings.…`, `<prefix>encoder.…`:
 * `prefix` is `"vision_model."` for a `CLIPVisionModel` (default) or e.g.
 * `"vision_tower.vision_model."` inside LLaVA. Every shape is checked against `config`; a
 * missing key or a wrong shape throws naming the checkpoint file and key.
 */
export function loadClipVision(
  g: Graph,
  store: WeightStore,
  config: ClipVisionConfig,
  prefix = "vision_model.",
): ClipVisionModel {
  const d = config.hiddenSize, p = config.patchSize, eps = config.layerNormEps;
  const linear = (name: string, out: number, inp: number) =>
    loadLinear(g, store, prefix + name, out, inp);
  const layerNorm = (name: string) => loadLayerNorm(g, store, prefix + name, d, eps);
  const layers = Array.from({ length: config.numHiddenLayers }, (_, i): ClipEncoderLayer => {
    const l = `encoder.layers.${i}.`;
    return {
      layerNorm1: layerNorm(`${l}layer_norm1`),
      qProj: linear(`${l}self_attn.q_proj`, d, d),
      kProj: linear(`${l}self_attn.k_proj`, d, d),
      vProj: linear(`${l}self_attn.v_proj`, d, d),
      outProj: linear(`${l}self_attn.out_proj`, d, d),
      layerNorm2: layerNorm(`${l}layer_norm2`),
      fc1: linear(`${l}mlp.fc1`, config.intermediateSize, d),
      fc2: linear(`${l}mlp.fc2`, d, config.intermediateSize),
    };
  });
  return {
    config,
    patchEmbedding: store.get(
      g,
      `${prefix}embeddings.patch_embedding.weight`,
      [d, config.numChannels, p, p],
    ),
    classEmbedding: store.get(g, `${prefix}embeddings.class_embedding`, [d]),
    positionEmbedding: store.get(
      g,
      `${prefix}embeddings.position_embedding.weight`,
      [numPatches(config) + 1, d],
    ),
    preLayerNorm: layerNorm("pre_layrnorm"),
    layers,
    postLayerNorm: layerNorm("post_layernorm"),
  };
}

// ---------------------------------------------------------------------------------------------
// Blocks

/** Patch tokens (row-major) after the class token, plus position embeddings: `[b, 1 + P, D]`. */
function embeddings(m: ClipVisionModel, pixels: Value): Value {
  const { hiddenSize: d, patchSize: p } = m.config;
  const grid = op.conv(pixels, m.patchEmbedding, null, { strides: [p, p] }); // [b, D, h, w]
  const [b, , h, w] = grid.shape;
  const patches = op.transpose(op.reshape(grid, [b, d, (h as number) * (w as number)]), [0, 2, 1]);
  const cls = expandBatch(op.reshape(m.classEmbedding, [1, 1, d]), patches);
  return op.add(op.concat([cls, patches], 1), m.positionEmbedding);
}

function selfAttention(m: ClipVisionModel, l: ClipEncoderLayer, x: Value): Value {
  const heads = m.config.numAttentionHeads;
  return dense(
    attend(dense(x, l.qProj), dense(x, l.kProj), dense(x, l.vProj), { heads }),
    l.outProj,
  );
}

function encoderLayer(m: ClipVisionModel, l: ClipEncoderLayer, x: Value): Value {
  return preLnLayer(l, m.config.hiddenAct, x, (y) => selfAttention(m, l, y));
}

// ---------------------------------------------------------------------------------------------
// The tower

/** What {@linkcode clipVision} computes, as in Hugging Face's `output_hidden_states=True`. */
export interface ClipVisionOutput {
  /**
   * `n + 1` values `[b, 1 + P, D]`: `pre_layrnorm(embeddings)`, then each encoder layer's
   * output.
   */
  readonly hiddenStates: readonly Value[];
  /** The last encoder layer's output (no `post_layernorm`). */
  readonly lastHiddenState: Value;
  /** `post_layernorm(lastHiddenState[:, 0])`: `[b, D]`. */
  readonly pooled: Value;
}

/** Runs the tower on `pixels` `f32[batch, C, image_size, image_size]` (already normalised). */
export function clipVision(m: ClipVisionModel, pixels: Value): ClipVisionOutput {
  const c = m.config;
  checkImageInput("CLIP vision", pixels, c.numChannels, c.imageSize);
  let x = norm(embeddings(m, pixels), m.preLayerNorm);
  const hiddenStates = [x];
  for (const layer of m.layers) hiddenStates.push(x = encoderLayer(m, layer, x));
  const cls = op.squeeze(op.slice(x, [0], [1], [1]), [1]);
  return { hiddenStates, lastHiddenState: x, pooled: norm(cls, m.postLayerNorm) };
}

// ---------------------------------------------------------------------------------------------
// LLaVA feature selection

/** `vision_feature_select_strategy`: `"default"` drops the class token, `"full"` keeps it. */
export type FeatureSelectStrategy = "default" | "full";

/** Which hidden states LLaVA feeds to its projector. */
export interface FeatureSelection {
  /**
   * `vision_feature_layer`: an index into the hidden states (negative counts from the end;
   * LLaVA-1.5 uses -2), or several, concatenated along the feature axis.
   */
  readonly layer: number | readonly number[];
  /** `vision_feature_select_strategy`. */
  readonly strategy: FeatureSelectStrategy;
}

/**
 * The image features LLaVA projects: `hiddenStates[layer]` (with the class token dropped for
 * strategy `"default"`), or the concatenation over several layers: `[b, P, D·layers]`.
 */
export function selectFeatures(
  hiddenStates: readonly Value[],
  selection: FeatureSelection,
): Value {
  const layers = typeof selection.layer === "number" ? [selection.layer] : selection.layer;
  if (layers.length === 0) throw new Error("selectFeatures: no vision_feature_layer given");
  const picked = layers.map((l) => {
    const i = l < 0 ? hiddenStates.length + l : l;
    const h = hiddenStates[i];
    if (!Number.isInteger(l) || h === undefined) {
      throw new Error(
        `selectFeatures: vision_feature_layer ${l} is outside the ${hiddenStates.length} hidden states`,
      );
    }
    return selection.strategy === "default" ? op.slice(h, [1], [h.shape[1] as number], [1]) : h;
  });
  return picked.length === 1 ? picked[0] : op.concat(picked, -1);
}

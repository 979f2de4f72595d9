/**
 * The image side of LLaVA (Hugging Face `LlavaForConditionalGeneration`): the CLIP tower's
 * selected hidden states (`vision_feature_layer`, `vision_feature_select_strategy`) mapped
 * into the language model's embedding space by the multi-modal projector, two linear layers
 * with `projector_hidden_act` (exact GELU) between them:
 * `linear_2(act(linear_1(features)))`.
 *
 * Checkpoints name the parts `vision_tower.vision_model.*` and `multi_modal_projector.*`
 * (transformers < 4.52) or the same under `model.` (later versions);
 * {@linkcode llavaKeyPrefix} tells which.
 *
 * @example
 * ```ts ignore
 * const config = parseLlavaImageConfig(await ConfigFields.read(`${dir}/config.json`));
 * const g = new Graph();
 * const m = loadLlavaImage(g, store, config, llavaKeyPrefix(store));
 * const pixels = g.input("pixel_values", "f32", ["batch", 3, 336, 336]);
 * const { imageFeatures } = llavaImage(m, pixels); // [batch, 576, d_text]
 * ```
 *
 * @module
 */
import type { Graph, Value } from "../graph/ir.ts";
import {
  clipVision,
  type ClipVisionConfig,
  type ClipVisionModel,
  type ClipVisionOutput,
  type FeatureSelection,
  loadClipVision,
  parseClipVisionConfig,
  selectFeatures,
} from "./clip_vision.ts";
import type { ConfigFields } from "./hf_config.ts";
import {
  activate,
  type Activation,
  ACTIVATIONS,
  dense,
  type Linear,
  loadLinear,
} from "./layers.ts";
import type { WeightStore } from "./weights.ts";

// ---------------------------------------------------------------------------------------------
// Config

/** The image side of a LLaVA `config.json`. */
export interface LlavaImageConfig {
  /** `vision_config`. */
  readonly vision: ClipVisionConfig;
  /** `vision_feature_layer` (default -2) and `vision_feature_select_strategy` (`"default"`). */
  readonly features: FeatureSelection;
  /** `projector_hidden_act` (default `gelu`). */
  readonly projectorHiddenAct: Activation;
  /** `multimodal_projector_bias` (default true). */
  readonly projectorBias: boolean;
  /** `text_config.hidden_size`: the width the projector maps to. */
  readonly textHiddenSize: number;
}

function parseFeatureLayer(fields: ConfigFields): number | readonly number[] {
  const raw = fields.raw("vision_feature_layer");
  if (raw === undefined || raw === null) return -2;
  const layers = Array.isArray(raw) ? raw : [raw];
  const valid = layers.length > 0 && layers.every((l) => Number.isInteger(l));
  if (!valid) {
    throw fields.error(
      "vision_feature_layer",
      `must be an integer or a non-empty list of integers, got ${JSON.stringify(raw)}`,
    );
  }
  return Array.isArray(raw) ? layers as number[] : raw as number;
}

/** Parses a LLaVA `config.json` (`model_type` `llava`); throws naming the file and field. */
export function parseLlavaImageConfig(fields: ConfigFields): LlavaImageConfig {
  const vision = parseClipVisionConfig(fields.section("vision_config"));
  const layer = parseFeatureLayer(fields);
  for (const l of typeof layer === "number" ? [layer] : layer) {
    if (l < -(vision.numHiddenLayers + 1) || l > vision.numHiddenLayers) {
      throw fields.error(
        "vision_feature_layer",
        `(${l}) is outside the ${vision.numHiddenLayers + 1} hidden states of the vision tower`,
      );
    }
  }
  return {
    vision,
    features: {
      layer,
      strategy: fields.oneOf("vision_feature_select_strategy", ["default", "full"], "default"),
    },
    projectorHiddenAct: fields.oneOf("projector_hidden_act", ACTIVATIONS, "gelu"),
    projectorBias: fields.bool("multimodal_projector_bias", true),
    textHiddenSize: fields.section("text_config").int("hidden_size"),
  };
}

// ---------------------------------------------------------------------------------------------
// Weights

/** The multi-modal projector. */
export interface LlavaProjector {
  /** `linear_1` `[d_text, D·layers]`. */
  readonly linear1: Linear;
  /** `linear_2` `[d_text, d_text]`. */
  readonly linear2: Linear;
  /** `projector_hidden_act`. */
  readonly act: Activation;
}

/** The image side of LLaVA loaded into one graph. */
export interface LlavaImageModel {
  /** The config the weights were checked against. */
  readonly config: LlavaImageConfig;
  /** The CLIP tower. */
  readonly vision: ClipVisionModel;
  /** The projector. */
  readonly projector: LlavaProjector;
}

/**
 * `"model."` when the checkpoint stores the vision tower under `model.vision_tower.` (newer
 * transformers), else `""`.
 */
export function llavaKeyPrefix(store: WeightStore): string {
  return store.has("model.vision_tower.vision_model.embeddings.class_embedding") ? "model." : "";
}

/**
 * Loads the CLIP tower (`<prefix>vision_tower.vision_model.*`) and the projector
 * (`<prefix>multi_modal_projector.linear_{1,2}`) into `g`. Every shape is checked against
 * `config`; a missing key or a wrong shape throws naming the checkpoint file and key.
 */
export function loadLlavaImage(
  g: Graph,
  store: WeightStore,
  config: LlavaImageConfig,
  prefix = "",
): LlavaImageModel {
  const layers = typeof config.features.layer === "number" ? 1 : config.features.layer.length;
  const d = config.textHiddenSize, bias = config.projectorBias;
  const proj = `${prefix}multi_modal_projector.`;
  return {
    config,
    vision: loadClipVision(g, store, config.vision, `${prefix}vision_tower.vision_model.`),
    projector: {
      linear1: loadLinear(g, store, `${proj}linear_1`, d, config.vision.hiddenSize * layers, bias),
      linear2: loadLinear(g, store, `${proj}linear_2`, d, d, bias),
      act: config.projectorHiddenAct,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The image features

/** `linear_2(act(linear_1(features)))`. */
export function project(p: LlavaProjector, features: Value): Value {
  return dense(activate(p.act, dense(features, p.linear1)), p.linear2);
}

/** Everything {@linkcode llavaImage} computes. */
export interface LlavaImage {
  /** The CLIP tower's outputs. */
  readonly vision: ClipVisionOutput;
  /** The selected hidden states `[b, P, D·layers]` (`P + 1` rows for strategy `"full"`). */
  readonly selectedFeatures: Value;
  /** The projected features `[b, P, d_text]` that replace the image tokens' embeddings. */
  readonly imageFeatures: Value;
}

/** Runs the tower on `pixels`, selects the configured features and projects them. */
export function llavaImage(m: LlavaImageModel, pixels: Value): LlavaImage {
  const vision = clipVision(m.vision, pixels);
  const selectedFeatures = selectFeatures(vision.hiddenStates, m.config.features);
  return { vision, selectedFeatures, imageFeatures: project(m.projector, selectedFeatures) };
}

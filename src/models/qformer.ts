/**
 * The BLIP-2 Q-Former (Hugging Face `Blip2QFormerModel`) run on query tokens only, and the
 * language projection that maps its output into the language model's embedding space.
 *
 * The learned query tokens `[1, Q, H]` go through `layernorm` (no word or position
 * embeddings: there is no text input), then BERT-style post-LN layers: self-attention →
 * `output.dense` → `LayerNorm(x + ·)`; on every `cross_attention_frequency`-th layer
 * (`i % frequency == 0`) a cross-attention block whose keys and values come from the image
 * embeds (width `encoder_hidden_size`), with the same post-LN; then the query FFN
 * `intermediate_query.dense` → `hidden_act` → `output_query.dense` → `LayerNorm(x + ·)`. The
 * text-branch FFN (`intermediate.*`, `output.*`) is never used for query tokens and not loaded.
 *
 * The language projection is one linear layer `H → d_text` (`language_projection` in BLIP-2;
 * MiniGPT-4's `llama_proj`, 768 → 4096, has the same shape of code).
 *
 * Reading order: config, weights, blocks, the Q-Former, the projection, then the whole
 * BLIP-2 image prefix (ViT → Q-Former → projection).
 *
 * @example
 * ```ts ignore
 * const config = parseBlip2Config(await ConfigFields.read(`${dir}/config.json`));
 * const g = new Graph();
 * const pixels = g.input("pixel_values", "f32", ["batch", 3, 224, 224]);
 * const { imageTokens } = blip2ImagePrefix(loadBlip2ImagePrefix(g, store, config), pixels);
 * ```
 *
 * @module
 */
import type { Graph, Value } from "../graph/ir.ts";
import * as op from "../graph/ops.ts";
import { attend } from "./attention.ts";
import {
  blip2Vision,
  type Blip2VisionConfig,
  type Blip2VisionModel,
  type Blip2VisionOutput,
  loadBlip2Vision,
  parseBlip2VisionConfig,
} from "./blip2_vision.ts";
import type { ConfigFields } from "./hf_config.ts";
import {
  activate,
  type Activation,
  ACTIVATIONS,
  dense,
  expandBatch,
  type LayerNorm,
  type Linear,
  loadLayerNorm,
  loadLinear,
  norm,
} from "./layers.ts";
import type { WeightStore } from "./weights.ts";

// ---------------------------------------------------------------------------------------------
// Config

/** The fields of a `Blip2QFormerConfig` the query branch uses. */
export interface QFormerConfig {
  /** `hidden_size`: width H of the queries. */
  readonly hiddenSize: number;
  /** `num_hidden_layers`. */
  readonly numHiddenLayers: number;
  /** `num_attention_heads` (divides `hidden_size`). */
  readonly numAttentionHeads: number;
  /** `intermediate_size`: width of the FFN. */
  readonly intermediateSize: number;
  /** `cross_attention_frequency` (default 2): layer `i` cross-attends when `i % f == 0`. */
  readonly crossAttentionFrequency: number;
  /** `encoder_hidden_size`: width of the image embeds keys and values come from. */
  readonly encoderHiddenSize: number;
  /** `hidden_act` (default `gelu`, exact). */
  readonly hiddenAct: Activation;
  /** `layer_norm_eps` (default 1e-12). */
  readonly layerNormEps: number;
}

/**
 * Parses the `qformer_config` section of a BLIP-2 `config.json`. `encoder_hidden_size` is
 * required unless `encoderHiddenSize` is given (BLIP-2 sets it to the vision width, which wins
 * over the field, as in Hugging Face). Throws naming the file and field.
 */
export function parseQFormerConfig(
  fields: ConfigFields,
  encoderHiddenSize?: number,
): QFormerConfig {
  const config: QFormerConfig = {
    hiddenSize: fields.int("hidden_size"),
    numHiddenLayers: fields.int("num_hidden_layers"),
    numAttentionHeads: fields.int("num_attention_heads"),
    intermediateSize: fields.int("intermediate_size"),
    crossAttentionFrequency: fields.int("cross_attention_frequency", 2),
    encoderHiddenSize: encoderHiddenSize ?? fields.int("encoder_hidden_size"),
    hiddenAct: fields.oneOf("hidden_act", ACTIVATIONS, "gelu"),
    layerNormEps: fields.positive("layer_norm_eps", 1e-12),
  };
  if (config.hiddenSize % config.numAttentionHeads !== 0) {
    throw fields.error(
      "num_attention_heads",
      `(${config.numAttentionHeads}) must divide hidden_size (${config.hiddenSize})`,
    );
  }
  return config;
}

/** The image side of a BLIP-2 `config.json`. */
export interface Blip2Config {
  /** `vision_config`. */
  readonly vision: Blip2VisionConfig;
  /** `qformer_config` (`encoder_hidden_size` = the vision width). */
  readonly qformer: QFormerConfig;
  /** `num_query_tokens`. */
  readonly numQueryTokens: number;
  /** `text_config.hidden_size`: the width the language projection maps to. */
  readonly textHiddenSize: number;
}

/** Parses a BLIP-2 `config.json` (`model_type` `blip-2`); throws naming the file and field. */
export function parseBlip2Config(fields: ConfigFields): Blip2Config {
  const vision = parseBlip2VisionConfig(fields.section("vision_config"));
  return {
    vision,
    qformer: parseQFormerConfig(fields.section("qformer_config"), vision.hiddenSize),
    numQueryTokens: fields.int("num_query_tokens"),
    textHiddenSize: fields.section("text_config").int("hidden_size"),
  };
}

// ---------------------------------------------------------------------------------------------
// Weights

/** An attention block: `attention.{query,key,value}` then `output.{dense,LayerNorm}`. */
export interface QFormerAttention {
  /** `attention.query` `[H, H]`. */
  readonly query: Linear;
  /** `attention.key` `[H, H]`, or `[H, encoder_hidden_size]` for cross-attention. */
  readonly key: Linear;
  /** `attention.value`, shaped as `key`. */
  readonly value: Linear;
  /** `output.dense` `[H, H]`. */
  readonly output: Linear;
  /** `output.LayerNorm`. */
  readonly layerNorm: LayerNorm;
}

/** One Q-Former layer's query-branch weights. */
export interface QFormerLayer {
  /** `attention.*`. */
  readonly attention: QFormerAttention;
  /** `crossattention.*` on layers `i % cross_attention_frequency == 0`, else null. */
  readonly crossAttention: QFormerAttention | null;
  /** `intermediate_query.dense`. */
  readonly intermediate: Linear;
  /** `output_query.dense`. */
  readonly output: Linear;
  /** `output_query.LayerNorm`. */
  readonly outputLayerNorm: LayerNorm;
}

/** A Q-Former: its config and its query-branch weights as values of one graph. */
export interface QFormerModel {
  /** The config the weights were checked against. */
  readonly config: QFormerConfig;
  /** `layernorm`, applied to the query tokens. */
  readonly layerNorm: LayerNorm;
  /** `encoder.layer.*`. */
  readonly layers: readonly QFormerLayer[];
}

/**
 * Loads the Q-Former's query-branch weights into `g` from `<prefix>layernorm.…` and
 * `<prefix>encoder.layer.<i>.…` (`prefix` defaults to `"qformer."`). Every shape is checked
 * against `config`; a missing key or a wrong shape throws naming the checkpoint file and key.
 */
export function loadQFormer(
  g: Graph,
  store: WeightStore,
  config: QFormerConfig,
  prefix = "qformer.",
): QFormerModel {
  const h = config.hiddenSize, eps = config.layerNormEps;
  const linear = (name: string, out: number, inp: number) =>
    loadLinear(g, store, prefix + name, out, inp);
  const layerNorm = (name: string) => loadLayerNorm(g, store, prefix + name, h, eps);
  const attention = (name: string, kvWidth: number): QFormerAttention => ({
    query: linear(`${name}.attention.query`, h, h),
    key: linear(`${name}.attention.key`, h, kvWidth),
    value: linear(`${name}.attention.value`, h, kvWidth),
    output: linear(`${name}.output.dense`, h, h),
    layerNorm: layerNorm(`${name}.output.LayerNorm`),
  });
  const layers = Array.from({ length: config.numHiddenLayers }, (_, i): QFormerLayer => {
    const l = `encoder.layer.${i}.`;
    return {
      attention: attention(`${l}attention`, h),
      crossAttention: i % config.crossAttentionFrequency === 0
        ? attention(`${l}crossattention`, config.encoderHiddenSize)
        : null,
      intermediate: linear(`${l}intermediate_query.dense`, config.intermediateSize, h),
      output: linear(`${l}output_query.dense`, h, config.intermediateSize),
      outputLayerNorm: layerNorm(`${l}output_query.LayerNorm`),
    };
  });
  return { config, layerNorm: layerNorm("layernorm"), layers };
}

// ---------------------------------------------------------------------------------------------
// Blocks

/** Post-LN attention of `x` over `context` (itself for self-attention), no mask. */
function attentionBlock(m: QFormerModel, a: QFormerAttention, x: Value, context: Value): Value {
  const heads = m.config.numAttentionHeads;
  const attended = attend(dense(x, a.query), dense(context, a.key), dense(context, a.value), {
    heads,
  });
  return norm(op.add(dense(attended, a.output), x), a.layerNorm);
}

function feedForward(m: QFormerModel, l: QFormerLayer, x: Value): Value {
  const ffn = dense(activate(m.config.hiddenAct, dense(x, l.intermediate)), l.output);
  return norm(op.add(ffn, x), l.outputLayerNorm);
}

function qformerLayer(m: QFormerModel, l: QFormerLayer, x: Value, imageEmbeds: Value): Value {
  let h = attentionBlock(m, l.attention, x, x);
  if (l.crossAttention) h = attentionBlock(m, l.crossAttention, h, imageEmbeds);
  return feedForward(m, l, h);
}

// ---------------------------------------------------------------------------------------------
// The Q-Former

/** What {@linkcode qformer} computes, as in Hugging Face's `output_hidden_states=True`. */
export interface QFormerOutput {
  /** `n + 1` values `[b, Q, H]`: `layernorm(query_tokens)`, then each layer's output. */
  readonly hiddenStates: readonly Value[];
  /** The last layer's output `[b, Q, H]`. */
  readonly lastHiddenState: Value;
}

/**
 * Runs the Q-Former: `queryTokens` `[1, Q, H]` (repeated over the batch) attend to
 * `imageEmbeds` `[b, S, encoder_hidden_size]` (all of them: no image mask).
 */
export function qformer(m: QFormerModel, queryTokens: Value, imageEmbeds: Value): QFormerOutput {
  const { hiddenSize, encoderHiddenSize } = m.config;
  if (queryTokens.rank !== 3 || queryTokens.shape[0] !== 1 || queryTokens.shape[2] !== hiddenSize) {
    throw new Error(
      `Q-Former: query tokens must be [1, Q, ${hiddenSize}], got ${queryTokens.describe()}`,
    );
  }
  if (imageEmbeds.rank !== 3 || imageEmbeds.shape[2] !== encoderHiddenSize) {
    throw new Error(
      `Q-Former: image embeds must be [batch, S, ${encoderHiddenSize}], got ${imageEmbeds.describe()}`,
    );
  }
  let x = norm(expandBatch(queryTokens, imageEmbeds), m.layerNorm);
  const hiddenStates = [x];
  for (const layer of m.layers) hiddenStates.push(x = qformerLayer(m, layer, x, imageEmbeds));
  return { hiddenStates, lastHiddenState: x };
}

// ---------------------------------------------------------------------------------------------
// The language projection

/**
 * Loads the language projection `<name>.weight` `[textHidden, qformerHidden]` and its bias
 * (`name` defaults to BLIP-2's `"language_projection"`; MiniGPT-4 uses `"llama_proj"`).
 * Apply it with `dense(queryOutput, projection)`.
 */
export function loadLanguageProjection(
  g: Graph,
  store: WeightStore,
  qformerHidden: number,
  textHidden: number,
  name = "language_projection",
): Linear {
  return loadLinear(g, store, name, textHidden, qformerHidden);
}

// ---------------------------------------------------------------------------------------------
// The BLIP-2 image prefix

/** Weight key names of the image side of a BLIP-2 checkpoint. */
export interface Blip2Keys {
  /** ViT key prefix (default `"vision_model."`). */
  readonly vision?: string;
  /** Query tokens key (default `"query_tokens"`). */
  readonly queryTokens?: string;
  /** Q-Former key prefix (default `"qformer."`). */
  readonly qformer?: string;
  /** Language projection name (default `"language_projection"`). */
  readonly projection?: string;
}

/** The image side of BLIP-2 loaded into one graph. */
export interface Blip2ImagePrefixModel {
  /** The ViT. */
  readonly vision: Blip2VisionModel;
  /** `query_tokens` `[1, Q, H]`. */
  readonly queryTokens: Value;
  /** The Q-Former. */
  readonly qformer: QFormerModel;
  /** The language projection. */
  readonly projection: Linear;
}

/**
 * Loads ViT, query tokens, Q-Former and language projection of a BLIP-2 checkpoint into `g`
 * (shapes checked against `config`; errors name the checkpoint file and key).
 */
export function loadBlip2ImagePrefix(
  g: Graph,
  store: WeightStore,
  config: Blip2Config,
  keys: Blip2Keys = {},
): Blip2ImagePrefixModel {
  const h = config.qformer.hiddenSize;
  return {
    vision: loadBlip2Vision(g, store, config.vision, keys.vision),
    queryTokens: store.get(g, keys.queryTokens ?? "query_tokens", [1, config.numQueryTokens, h]),
    qformer: loadQFormer(g, store, config.qformer, keys.qformer),
    projection: loadLanguageProjection(g, store, h, config.textHiddenSize, keys.projection),
  };
}

/** Everything {@linkcode blip2ImagePrefix} computes. */
export interface Blip2ImagePrefix {
  /** The ViT's outputs (`lastHiddenState` = the image embeds). */
  readonly vision: Blip2VisionOutput;
  /** The Q-Former's outputs. */
  readonly qformer: QFormerOutput;
  /** The projected query outputs `[b, Q, d_text]` that prefix the text embeddings. */
  readonly imageTokens: Value;
}

/**
 * The visual prefix BLIP-2 (and LiveEdit's `get_llm_input_embeds`) puts before the text:
 * `language_projection(qformer(query_tokens, vision(pixels)))`.
 */
export function blip2ImagePrefix(m: Blip2ImagePrefixModel, pixels: Value): Blip2ImagePrefix {
  const vision = blip2Vision(m.vision, pixels);
  const q = qformer(m.qformer, m.queryTokens, vision.lastHiddenState);
  return { vision, qformer: q, imageTokens: dense(q.lastHiddenState, m.projection) };
}

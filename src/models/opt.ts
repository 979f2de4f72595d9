/**
 * OPT (Meta's Open Pre-trained Transformer), the language model of BLIP-2 OPT, as Hugging
 * Face's `OPTForCausalLM` computes it: token embeddings plus learned positions, decoder layers
 * of self-attention and a ReLU MLP with LayerNorm before (or, with `do_layer_norm_before:
 * false`, after) each block, a final LayerNorm and an LM head tied to the token embeddings.
 *
 * Weights by their published names under `model.decoder.` (BLIP-2:
 * `language_model.model.decoder.`).
 *
 * @example
 * ```ts ignore
 * const opt = await loadOpt("path/to/opt");
 * const g = new Graph();
 * const ids = g.input("input_ids", "i64", ["batch", "seq"]);
 * const mask = g.input("attention_mask", "i64", ["batch", "seq"]);
 * const state = runLayers(opt, opt.begin(g, opt.embedTokens(g, ids), mask), 0, opt.config.numLayers);
 * const logits = opt.head(g, state.hidden);
 * ```
 *
 * @module
 */
import type { Graph, Value } from "../graph/ir.ts";
import * as op from "../graph/ops.ts";
import { splitHeads } from "./attention.ts";
import {
  type BeginOptions,
  cachedAttention,
  checkLayerIndex,
  type DecoderConfig,
  type DecoderSource,
  type DecoderState,
  decoderState,
  type KeyValue,
  withLayerOutput,
} from "./decoder.ts";
import { DecoderBase, openDecoder } from "./decoder_base.ts";
import type { ConfigFields } from "./hf_config.ts";
import { activate, type Activation, dense, loadLayerNorm, loadLinear, norm } from "./layers.ts";
import type { ComputeDType } from "./weights.ts";

// ---------------------------------------------------------------------------------------------
// Config

/** OPT's config (`OPTConfig`). */
export interface OptConfig extends DecoderConfig {
  /** Always `"opt"`. */
  readonly modelType: "opt";
  /** `ffn_dim`, the MLP's inner width. */
  readonly ffnDim: number;
  /** `do_layer_norm_before`: pre-LN blocks (true for every size but 350m). */
  readonly layerNormBefore: boolean;
  /** A final LayerNorm after the last layer (`do_layer_norm_before` and not `_remove_final_layer_norm`). */
  readonly finalLayerNorm: boolean;
  /** `enable_bias`: biases in the attention projections and the MLP. */
  readonly enableBias: boolean;
  /** `activation_function` of the MLP. */
  readonly activation: Activation;
}

/** OPT's learned position table has this many extra rows; position `p` reads row `p + 2`. */
export const OPT_POSITION_OFFSET = 2;

/** LayerNorm epsilon of OPT (PyTorch's default; not in the config). */
const LAYER_NORM_EPS = 1e-5;

/**
 * Parses an OPT `config.json` (or a VLLM's `text_config`). Throws naming the file and field
 * for a missing or invalid field and for what this implementation does not support
 * (`word_embed_proj_dim` other than `hidden_size`, non-affine LayerNorm).
 */
export function parseOptConfig(c: ConfigFields): OptConfig {
  c.oneOf("model_type", ["opt"]);
  const hiddenSize = c.int("hidden_size");
  const numHeads = c.int("num_attention_heads");
  if (hiddenSize % numHeads !== 0) {
    throw c.error("num_attention_heads", `(${numHeads}) must divide hidden_size ${hiddenSize}`);
  }
  if (c.int("word_embed_proj_dim", hiddenSize) !== hiddenSize) {
    throw c.error(
      "word_embed_proj_dim",
      `must equal hidden_size ${hiddenSize} (project_in/out are not supported)`,
    );
  }
  if (!c.bool("layer_norm_elementwise_affine", true)) {
    throw c.error(
      "layer_norm_elementwise_affine",
      "must be true (LayerNorm without weights is not supported)",
    );
  }
  const layerNormBefore = c.bool("do_layer_norm_before", true);
  return {
    modelType: "opt",
    vocabSize: c.int("vocab_size"),
    hiddenSize,
    numLayers: c.int("num_hidden_layers"),
    numHeads,
    numKvHeads: numHeads,
    headDim: hiddenSize / numHeads,
    maxPositions: c.int("max_position_embeddings"),
    ffnDim: c.int("ffn_dim"),
    layerNormBefore,
    finalLayerNorm: layerNormBefore && !c.bool("_remove_final_layer_norm", false),
    enableBias: c.bool("enable_bias", true),
    activation: c.oneOf("activation_function", ["relu", "gelu", "gelu_new", "silu"], "relu"),
    tieWordEmbeddings: c.bool("tie_word_embeddings", true),
  };
}

// ---------------------------------------------------------------------------------------------
// Blocks

/** Self-attention of layer `i`: q (scaled by `head_dim**-0.5` in the scores), k, v, out_proj. */
function selfAttention(
  m: OptDecoder,
  i: number,
  x: Value,
  state: DecoderState,
): { out: Value; present: KeyValue } {
  const c = m.config;
  const proj = (name: string, y: Value) =>
    dense(y, m.linear(x.graph, `layers.${i}.self_attn.${name}`, c.hiddenSize, c.hiddenSize));
  const [qh, kh, vh] = ["q_proj", "k_proj", "v_proj"].map((name) =>
    splitHeads(proj(name, x), c.numHeads)
  );
  const { out, present } = cachedAttention(state, i, qh, kh, vh, c.headDim ** -0.5);
  return { out: proj("out_proj", out), present };
}

/** The MLP of layer `i`: fc1 → activation → fc2. */
function mlp(m: OptDecoder, i: number, x: Value): Value {
  const c = m.config;
  const fc1 = m.linear(x.graph, `layers.${i}.fc1`, c.ffnDim, c.hiddenSize);
  const fc2 = m.linear(x.graph, `layers.${i}.fc2`, c.hiddenSize, c.ffnDim);
  return dense(activate(c.activation, dense(x, fc1)), fc2);
}

// ---------------------------------------------------------------------------------------------
// Model

/** OPT as a {@linkcode CausalDecoder}; build it with {@linkcode loadOpt}. */
export class OptDecoder extends DecoderBase<OptConfig> {
  /** The linear layer `name` (relative to `keys.model`), with a bias when `enable_bias`. */
  linear(g: Graph, name: string, outDim: number, inDim: number) {
    return loadLinear(g, this.store, this.keys.model + name, outDim, inDim, this.config.enableBias);
  }

  /** The LayerNorm `name` (relative to `keys.model`). */
  layerNorm(g: Graph, name: string) {
    return loadLayerNorm(
      g,
      this.store,
      this.keys.model + name,
      this.config.hiddenSize,
      LAYER_NORM_EPS,
    );
  }

  /**
   * Adds the learned positions to `inputsEmbeds`: position `cumsum(mask)·mask - 1` of each
   * token (padding gets -1), read at row `+ 2` of `embed_positions`.
   */
  begin(
    g: Graph,
    inputsEmbeds: Value,
    attentionMask: Value,
    options: BeginOptions = {},
  ): DecoderState {
    const state = this.resume(g, inputsEmbeds, attentionMask, options);
    const c = this.config;
    const rows = op.add(
      op.mul(op.cumSum(attentionMask, 1), attentionMask),
      OPT_POSITION_OFFSET - 1,
    );
    const ofQueries = op.gather(rows, state.positions, 1); // [b, q]: the new tokens' columns
    const table = this.weight(g, "embed_positions.weight", [
      c.maxPositions + OPT_POSITION_OFFSET,
      c.hiddenSize,
    ]);
    return { ...state, hidden: op.add(inputsEmbeds, op.gather(table, ofQueries, 0)) };
  }

  /** The state at a layer boundary (mask and positions; OPT has nothing else per graph). */
  resume(_g: Graph, hidden: Value, attentionMask: Value, options: BeginOptions = {}): DecoderState {
    return decoderState(hidden, attentionMask, options);
  }

  /** Decoder layer `i`: `x + attn(ln(x))`, then `x + fc2(act(fc1(ln(x))))` (pre-LN). */
  layer(i: number, state: DecoderState): DecoderState {
    checkLayerIndex(this.config, i, "opt");
    const g = state.hidden.graph;
    const before = this.config.layerNormBefore;
    const attnNorm = this.layerNorm(g, `layers.${i}.self_attn_layer_norm`);
    const mlpNorm = this.layerNorm(g, `layers.${i}.final_layer_norm`);
    let x = state.hidden;
    const attn = selfAttention(this, i, before ? norm(x, attnNorm) : x, state);
    x = op.add(x, attn.out);
    if (!before) x = norm(x, attnNorm);
    x = op.add(x, mlp(this, i, before ? norm(x, mlpNorm) : x));
    if (!before) x = norm(x, mlpNorm);
    return withLayerOutput(state, i, x, attn.present);
  }

  /** `final_layer_norm` (identity for post-LN models, which have none). */
  finalNorm(hidden: Value): Value {
    return this.config.finalLayerNorm
      ? norm(hidden, this.layerNorm(hidden.graph, "final_layer_norm"))
      : hidden;
  }
}

// ---------------------------------------------------------------------------------------------
// Loading

/** Loads OPT from a model directory or a config section and weight store (`openDecoder`). */
export function loadOpt(
  source: DecoderSource,
  computeDtype: ComputeDType = "f32",
): Promise<OptDecoder> {
  return openDecoder(
    source,
    "model.decoder.",
    computeDtype,
    (config, store, keys) => new OptDecoder(parseOptConfig(config), store, keys),
  );
}

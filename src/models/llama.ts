/**
 * LLaMA, the language model of LLaVA (Vicuna), as Hugging Face's `LlamaForCausalLM` computes
 * it: token embeddings, decoder layers of self-attention with rotary position embeddings and a
 * SwiGLU MLP, each after an RMSNorm, a final RMSNorm and an untied LM head. Grouped-query
 * attention when `num_key_value_heads < num_attention_heads`.
 *
 * Weights by their published names under `model.` and `lm_head.weight` (LLaVA:
 * `language_model.model.` and `language_model.lm_head.weight`).
 *
 * @example
 * ```ts ignore
 * const llama = await loadLlama("path/to/llama");
 * const g = new Graph();
 * const ids = g.input("input_ids", "i64", ["batch", "seq"]);
 * const mask = g.input("attention_mask", "i64", ["batch", "seq"]);
 * const state = runLayers(llama, llama.begin(g, llama.embedTokens(g, ids), mask), 0, 2);
 * ```
 *
 * @module
 */
import type { Graph, Value } from "../graph/ir.ts";
import * as op from "../graph/ops.ts";
import { Tensor } from "../tensor/tensor.ts";
import { splitHeads, stableDtype } from "./attention.ts";
import {
  type BeginOptions,
  cachedAttention,
  checkLayerIndex,
  type DecoderConfig,
  type DecoderSource,
  type DecoderState,
  decoderState,
  type KeyValue,
  type Rotary,
  withLayerOutput,
} from "./decoder.ts";
import { DecoderBase, openDecoder } from "./decoder_base.ts";
import type { ConfigFields } from "./hf_config.ts";
import { activate, type Activation, dense, loadLinear } from "./layers.ts";
import type { ComputeDType } from "./weights.ts";

// ---------------------------------------------------------------------------------------------
// Config

/** LLaMA's config (`LlamaConfig`). */
export interface LlamaConfig extends DecoderConfig {
  /** Always `"llama"`. */
  readonly modelType: "llama";
  /** `intermediate_size`, the MLP's inner width. */
  readonly intermediateSize: number;
  /** `rms_norm_eps`. */
  readonly rmsNormEps: number;
  /** `rope_theta` (or `rope_parameters.rope_theta`), the rotary base. */
  readonly ropeTheta: number;
  /** `hidden_act` of the MLP's gate. */
  readonly activation: Activation;
  /** `attention_bias`: biases in q/k/v/o projections. */
  readonly attentionBias: boolean;
  /** `mlp_bias`: biases in gate/up/down projections. */
  readonly mlpBias: boolean;
}

/**
 * Parses a LLaMA `config.json` (or a VLLM's `text_config`). Throws naming the file and field
 * for a missing or invalid field, and for rotary scaling other than the default.
 */
export function parseLlamaConfig(c: ConfigFields): LlamaConfig {
  c.oneOf("model_type", ["llama"]);
  const hiddenSize = c.int("hidden_size");
  const numHeads = c.int("num_attention_heads");
  const numKvHeads = c.int("num_key_value_heads", numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw c.error(
      "num_key_value_heads",
      `(${numKvHeads}) must divide num_attention_heads ${numHeads}`,
    );
  }
  if (!c.has("head_dim") && hiddenSize % numHeads !== 0) {
    throw c.error("num_attention_heads", `(${numHeads}) must divide hidden_size ${hiddenSize}`);
  }
  const rope = c.has("rope_parameters") ? c.section("rope_parameters") : undefined;
  const scaling = c.has("rope_scaling") ? c.section("rope_scaling") : rope;
  scaling?.oneOf(scaling.has("rope_type") ? "rope_type" : "type", ["default"], "default");
  return {
    modelType: "llama",
    vocabSize: c.int("vocab_size"),
    hiddenSize,
    numLayers: c.int("num_hidden_layers"),
    numHeads,
    numKvHeads,
    headDim: c.int("head_dim", hiddenSize / numHeads),
    maxPositions: c.int("max_position_embeddings"),
    intermediateSize: c.int("intermediate_size"),
    rmsNormEps: c.positive("rms_norm_eps", 1e-6),
    ropeTheta: rope?.has("rope_theta")
      ? rope.positive("rope_theta")
      : c.positive("rope_theta", 10000),
    activation: c.oneOf("hidden_act", ["silu", "gelu", "relu"], "silu"),
    attentionBias: c.bool("attention_bias", false),
    mlpBias: c.bool("mlp_bias", false),
    tieWordEmbeddings: c.bool("tie_word_embeddings", false),
  };
}

// ---------------------------------------------------------------------------------------------
// Rotary position embeddings

/**
 * HF's default rotary tables for positions `0 … maxPositions - 1`, `[P, head_dim]`:
 * `inv_freq[i] = θ^(-2i/head_dim)`, angles `p · inv_freq` repeated over both halves of the
 * head, in float32 arithmetic as HF computes them.
 */
export function rotaryTables(config: LlamaConfig): { cos: Tensor<"f32">; sin: Tensor<"f32"> } {
  const { headDim: hd, maxPositions: n } = config;
  const f = Math.fround;
  const invFreq = Array.from(
    { length: hd / 2 },
    (_, i) => f(1 / f(config.ropeTheta ** f((2 * i) / hd))),
  );
  const cos = new Float32Array(n * hd);
  const sin = new Float32Array(n * hd);
  for (let p = 0; p < n; p++) {
    invFreq.forEach((w, i) => {
      const angle = f(p * w);
      for (const j of [i, i + hd / 2]) {
        cos[p * hd + j] = Math.cos(angle);
        sin[p * hd + j] = Math.sin(angle);
      }
    });
  }
  return { cos: new Tensor("f32", [n, hd], cos), sin: new Tensor("f32", [n, hd], sin) };
}

/** `cat(-x₂, x₁)` over the last axis (x₁, x₂ its halves). */
function rotateHalf(x: Value): Value {
  const d = x.shape[x.rank - 1] as number;
  const x1 = op.slice(x, [0], [d / 2], [-1]);
  const x2 = op.slice(x, [d / 2], [d], [-1]);
  return op.concat([op.neg(x2), x1], -1);
}

/** `x cos + rotate_half(x) sin` for heads `[b, h, q, hd]` and tables `[q, hd]`. */
function applyRotary(x: Value, rotary: Rotary): Value {
  return op.add(op.mul(x, rotary.cos), op.mul(rotateHalf(x), rotary.sin));
}

// ---------------------------------------------------------------------------------------------
// Blocks

/** Self-attention of layer `i`: q/k/v projections, rotary on q and k, o_proj. */
function selfAttention(
  m: LlamaDecoder,
  i: number,
  x: Value,
  state: DecoderState,
): { out: Value; present: KeyValue } {
  const c = m.config;
  const g = x.graph;
  const p = `layers.${i}.self_attn.`;
  const proj = (name: string, y: Value, out: number, inDim: number) =>
    dense(y, m.linear(g, p + name, out, inDim, c.attentionBias));
  const rotary = state.rotary!;
  const qh = applyRotary(
    splitHeads(proj("q_proj", x, c.numHeads * c.headDim, c.hiddenSize), c.numHeads),
    rotary,
  );
  const kh = applyRotary(
    splitHeads(proj("k_proj", x, c.numKvHeads * c.headDim, c.hiddenSize), c.numKvHeads),
    rotary,
  );
  const vh = splitHeads(proj("v_proj", x, c.numKvHeads * c.headDim, c.hiddenSize), c.numKvHeads);
  const { out, present } = cachedAttention(state, i, qh, kh, vh, c.headDim ** -0.5);
  return { out: proj("o_proj", out, c.hiddenSize, c.numHeads * c.headDim), present };
}

/** The SwiGLU MLP of layer `i`: `down(act(gate(x)) · up(x))`. */
function mlp(m: LlamaDecoder, i: number, x: Value): Value {
  const c = m.config;
  const g = x.graph;
  const p = `layers.${i}.mlp.`;
  const gate = m.linear(g, p + "gate_proj", c.intermediateSize, c.hiddenSize, c.mlpBias);
  const up = m.linear(g, p + "up_proj", c.intermediateSize, c.hiddenSize, c.mlpBias);
  const down = m.linear(g, p + "down_proj", c.hiddenSize, c.intermediateSize, c.mlpBias);
  return dense(op.mul(activate(c.activation, dense(x, gate)), dense(x, up)), down);
}

// ---------------------------------------------------------------------------------------------
// Model

/** LLaMA as a {@linkcode CausalDecoder}; build it with {@linkcode loadLlama}. */
export class LlamaDecoder extends DecoderBase<LlamaConfig> {
  #tables?: { cos: Tensor<"f32">; sin: Tensor<"f32"> };

  /** The linear layer `name` (relative to `keys.model`). */
  linear(g: Graph, name: string, outDim: number, inDim: number, bias: boolean) {
    return loadLinear(g, this.store, this.keys.model + name, outDim, inDim, bias);
  }

  /**
   * RMSNorm with weight `name` (relative to `keys.model`), computed in f32 when the model
   * computes in f16 and cast back, as HF's `LlamaRMSNorm` does.
   */
  rmsNorm(x: Value, name: string): Value {
    const up = stableDtype(x.dtype);
    const w = this.weight(x.graph, `${name}.weight`, [this.config.hiddenSize]);
    const y = op.rmsNorm(op.cast(x, up), op.cast(w, up), this.config.rmsNormEps);
    return op.cast(y, x.dtype);
  }

  /** LLaMA adds nothing to its embeddings: the same as {@linkcode LlamaDecoder.resume}. */
  begin(
    g: Graph,
    inputsEmbeds: Value,
    attentionMask: Value,
    options: BeginOptions = {},
  ): DecoderState {
    return this.resume(g, inputsEmbeds, attentionMask, options);
  }

  /**
   * The state at a layer boundary: mask, and the rotary tables at the queries' sequence
   * positions (`arange` over the sequence whatever the padding, as HF's forward pass),
   * computed in f32 and cast to the dtype of `hidden` (HF's `cos.to(x.dtype)`).
   */
  resume(g: Graph, hidden: Value, attentionMask: Value, options: BeginOptions = {}): DecoderState {
    const state = decoderState(hidden, attentionMask, options);
    this.#tables ??= rotaryTables(this.config);
    const at = (t: Tensor) => op.cast(op.gather(g.constant(t), state.positions, 0), hidden.dtype);
    return { ...state, rotary: { cos: at(this.#tables.cos), sin: at(this.#tables.sin) } };
  }

  /** Decoder layer `i`: `x + attn(rms(x))`, then `x + mlp(rms(x))`. */
  layer(i: number, state: DecoderState): DecoderState {
    checkLayerIndex(this.config, i, "llama");
    let x = state.hidden;
    const attn = selfAttention(this, i, this.rmsNorm(x, `layers.${i}.input_layernorm`), state);
    x = op.add(x, attn.out);
    x = op.add(x, mlp(this, i, this.rmsNorm(x, `layers.${i}.post_attention_layernorm`)));
    return withLayerOutput(state, i, x, attn.present);
  }

  /** The final RMSNorm `norm`. */
  finalNorm(hidden: Value): Value {
    return this.rmsNorm(hidden, "norm");
  }
}

// ---------------------------------------------------------------------------------------------
// Loading

/** Loads LLaMA from a model directory or a config section and weight store (`openDecoder`). */
export function loadLlama(
  source: DecoderSource,
  computeDtype: ComputeDType = "f32",
): Promise<LlamaDecoder> {
  return openDecoder(
    source,
    "model.",
    computeDtype,
    (config, store, keys) => new LlamaDecoder(parseLlamaConfig(config), store, keys),
  );
}

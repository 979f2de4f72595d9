/**
 * Random weights for the tiny models: the list of every tensor an architecture loads, under
 * its Hugging Face key name and shape, and a seeded initialisation that keeps activations of
 * order one:
 *
 * - linear and convolution weights: N(0, 1) / sqrt(fan_in), so a layer preserves the variance
 *   of its input;
 * - embedding tables (tokens, positions, class token, query tokens): N(0, 1) / sqrt(width), so
 *   OPT's tied head gives logits of standard deviation about 1;
 * - biases: N(0, 0.1²); norm weights 1 + N(0, 0.1²), norm biases N(0, 0.1²): near the
 *   identity, yet a loader that drops one of them computes something visibly different;
 * - BLIP-2's fused `qkv.bias`: query and value thirds random, the key third zero (it is
 *   `cat(q_bias, 0, v_bias)` in the real model).
 *
 * Tensors are drawn in the order {@linkcode tinyWeightSpecs} lists them from one
 * {@linkcode Rng}, so a seed gives the same values on every platform.
 *
 * @module
 */
import { fanIn, randn } from "../../tensor/create.ts";
import { Rng } from "../../tensor/rng.ts";
import type { Tensor } from "../../tensor/tensor.ts";
import {
  numPatches,
  type QFormerDims,
  type TextDims,
  type TinyDims,
  type VisionDims,
} from "./configs.ts";

/** How a tensor is initialised (see the module documentation). */
export type TensorInit = "linear" | "embedding" | "bias" | "normWeight" | "qkvBias";

/** One tensor of a checkpoint: its key, shape and initialisation. */
export interface TensorSpec {
  /** The Hugging Face key, e.g. `language_model.model.layers.0.mlp.up_proj.weight`. */
  readonly name: string;
  /** The shape. */
  readonly shape: readonly number[];
  /** The initialisation. */
  readonly init: TensorInit;
}

/** Collects specs under a key prefix. */
class SpecList {
  readonly specs: TensorSpec[] = [];

  add(name: string, shape: readonly number[], init: TensorInit): void {
    this.specs.push({ name, shape, init });
  }

  /** `name.weight` `[out, inp]` and, when `bias`, `name.bias` `[out]`. */
  linear(name: string, out: number, inp: number, bias = true): void {
    this.add(`${name}.weight`, [out, inp], "linear");
    if (bias) this.add(`${name}.bias`, [out], "bias");
  }

  /** LayerNorm `name.weight` and `name.bias` `[d]`. */
  layerNorm(name: string, d: number): void {
    this.add(`${name}.weight`, [d], "normWeight");
    this.add(`${name}.bias`, [d], "bias");
  }
}

/** BLIP-2's EVA ViT under `prefix` (`Blip2VisionModel`). */
function blip2Vision(s: SpecList, v: VisionDims, prefix: string): void {
  const d = v.hidden, p = v.patchSize;
  s.add(`${prefix}embeddings.class_embedding`, [1, 1, d], "embedding");
  s.add(`${prefix}embeddings.position_embedding`, [1, numPatches(v) + 1, d], "embedding");
  s.add(`${prefix}embeddings.patch_embedding.weight`, [d, 3, p, p], "linear");
  s.add(`${prefix}embeddings.patch_embedding.bias`, [d], "bias");
  for (let i = 0; i < v.layers; i++) {
    const l = `${prefix}encoder.layers.${i}.`;
    s.add(`${l}self_attn.qkv.weight`, [3 * d, d], "linear");
    s.add(`${l}self_attn.qkv.bias`, [3 * d], "qkvBias");
    s.linear(`${l}self_attn.projection`, d, d);
    s.layerNorm(`${l}layer_norm1`, d);
    s.linear(`${l}mlp.fc1`, v.intermediate, d);
    s.linear(`${l}mlp.fc2`, d, v.intermediate);
    s.layerNorm(`${l}layer_norm2`, d);
  }
  s.layerNorm(`${prefix}post_layernorm`, d);
}

/** The query tokens and the Q-Former's query branch under `qformer.` (`Blip2QFormerModel`). */
function qformer(s: SpecList, q: QFormerDims, encoderHidden: number): void {
  const h = q.hidden;
  s.add("query_tokens", [1, q.queryTokens, h], "embedding");
  s.layerNorm("qformer.layernorm", h);
  const attention = (name: string, kvWidth: number) => {
    s.linear(`${name}.attention.query`, h, h);
    s.linear(`${name}.attention.key`, h, kvWidth);
    s.linear(`${name}.attention.value`, h, kvWidth);
    s.linear(`${name}.output.dense`, h, h);
    s.layerNorm(`${name}.output.LayerNorm`, h);
  };
  for (let i = 0; i < q.layers; i++) {
    const l = `qformer.encoder.layer.${i}.`;
    attention(`${l}attention`, h);
    if (i % q.crossAttentionFrequency === 0) attention(`${l}crossattention`, encoderHidden);
    s.linear(`${l}intermediate_query.dense`, q.intermediate, h);
    s.linear(`${l}output_query.dense`, h, q.intermediate);
    s.layerNorm(`${l}output_query.LayerNorm`, h);
  }
}

/** OPT's decoder under `language_model.model.decoder.` (tied head: no `lm_head.weight`). */
function opt(s: SpecList, t: TextDims): void {
  const p = "language_model.model.decoder.", d = t.hidden;
  s.add(`${p}embed_tokens.weight`, [t.vocab, d], "embedding");
  s.add(`${p}embed_positions.weight`, [t.maxPositions + 2, d], "embedding");
  for (let i = 0; i < t.layers; i++) {
    const l = `${p}layers.${i}.`;
    for (const proj of ["k_proj", "v_proj", "q_proj", "out_proj"]) {
      s.linear(`${l}self_attn.${proj}`, d, d);
    }
    s.layerNorm(`${l}self_attn_layer_norm`, d);
    s.linear(`${l}fc1`, t.intermediate, d);
    s.linear(`${l}fc2`, d, t.intermediate);
    s.layerNorm(`${l}final_layer_norm`, d);
  }
  s.layerNorm(`${p}final_layer_norm`, d);
}

/** CLIP's vision tower under `vision_tower.vision_model.` (no patch bias, `pre_layrnorm`). */
function clipVision(s: SpecList, v: VisionDims): void {
  const p = "vision_tower.vision_model.", d = v.hidden, k = v.patchSize;
  s.add(`${p}embeddings.class_embedding`, [d], "embedding");
  s.add(`${p}embeddings.patch_embedding.weight`, [d, 3, k, k], "linear");
  s.add(`${p}embeddings.position_embedding.weight`, [numPatches(v) + 1, d], "embedding");
  s.layerNorm(`${p}pre_layrnorm`, d);
  for (let i = 0; i < v.layers; i++) {
    const l = `${p}encoder.layers.${i}.`;
    for (const proj of ["k_proj", "v_proj", "q_proj", "out_proj"]) {
      s.linear(`${l}self_attn.${proj}`, d, d);
    }
    s.layerNorm(`${l}layer_norm1`, d);
    s.linear(`${l}mlp.fc1`, v.intermediate, d);
    s.linear(`${l}mlp.fc2`, d, v.intermediate);
    s.layerNorm(`${l}layer_norm2`, d);
  }
  s.layerNorm(`${p}post_layernorm`, d);
}

/** LLaMA under `language_model.` (`LlamaForCausalLM`: untied `lm_head`, no biases). */
function llama(s: SpecList, t: TextDims): void {
  const p = "language_model.model.", d = t.hidden;
  const kv = t.kvHeads * (d / t.heads);
  s.add(`${p}embed_tokens.weight`, [t.vocab, d], "embedding");
  for (let i = 0; i < t.layers; i++) {
    const l = `${p}layers.${i}.`;
    s.linear(`${l}self_attn.q_proj`, d, d, false);
    s.linear(`${l}self_attn.k_proj`, kv, d, false);
    s.linear(`${l}self_attn.v_proj`, kv, d, false);
    s.linear(`${l}self_attn.o_proj`, d, d, false);
    s.linear(`${l}mlp.gate_proj`, t.intermediate, d, false);
    s.linear(`${l}mlp.up_proj`, t.intermediate, d, false);
    s.linear(`${l}mlp.down_proj`, d, t.intermediate, false);
    s.add(`${l}input_layernorm.weight`, [d], "normWeight");
    s.add(`${l}post_attention_layernorm.weight`, [d], "normWeight");
  }
  s.add(`${p}norm.weight`, [d], "normWeight");
  s.add("language_model.lm_head.weight", [t.vocab, d], "linear");
}

/**
 * Every tensor of the tiny model with sizes `dims`, with the keys of
 * `Blip2ForConditionalGeneration` (OPT), `LlavaForConditionalGeneration` (LLaMA), or for
 * MiniGPT-4 BLIP-2's image side with a LLaMA under `language_model.` (the layout of
 * `src/models/vllm/minigpt4_config.ts`).
 *
 * @example
 * ```ts
 * import { tinyDims } from "./configs.ts";
 * import { tinyWeightSpecs } from "./weights.ts";
 * const specs = tinyWeightSpecs(tinyDims("blip2-opt"));
 * if (specs.some((s) => s.name.endsWith("lm_head.weight"))) throw new Error("OPT's head is tied");
 * ```
 */
export function tinyWeightSpecs(dims: TinyDims): TensorSpec[] {
  const s = new SpecList();
  switch (dims.arch) {
    case "blip2-opt":
    case "minigpt4":
      blip2Vision(s, dims.vision, "vision_model.");
      qformer(s, dims.qformer!, dims.vision.hidden);
      s.linear("language_projection", dims.text.hidden, dims.qformer!.hidden);
      if (dims.arch === "blip2-opt") opt(s, dims.text);
      else llama(s, dims.text);
      break;
    case "llava":
      clipVision(s, dims.vision);
      s.linear("multi_modal_projector.linear_1", dims.text.hidden, dims.vision.hidden);
      s.linear("multi_modal_projector.linear_2", dims.text.hidden, dims.text.hidden);
      llama(s, dims.text);
      break;
  }
  return s.specs;
}

/** Draws the values of `spec` from `rng` (see the module documentation). */
export function initTensor(spec: TensorSpec, rng: Rng): Tensor<"f32"> {
  const { shape } = spec;
  switch (spec.init) {
    case "linear":
      return randn(shape, rng, { std: 1 / Math.sqrt(fanIn(shape)) });
    case "embedding":
      return randn(shape, rng, { std: 1 / Math.sqrt(shape[shape.length - 1]) });
    case "bias":
      return randn(shape, rng, { std: 0.1 });
    case "normWeight":
      return randn(shape, rng, { mean: 1, std: 0.1 });
    case "qkvBias": {
      const t = randn(shape, rng, { std: 0.1 });
      const d = shape[0] / 3;
      t.data.fill(0, d, 2 * d);
      return t;
    }
  }
}

/**
 * The random weights of the tiny model with sizes `dims`, keyed by name, drawn from
 * `new Rng(seed)` in spec order.
 */
export function tinyWeights(dims: TinyDims, seed: number): Record<string, Tensor<"f32">> {
  const rng = new Rng(seed);
  return Object.fromEntries(tinyWeightSpecs(dims).map((s) => [s.name, initTensor(s, rng)]));
}

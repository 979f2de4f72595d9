/**
 * Sizes and `config.json` contents of the tiny random-weight models that tests and demos use
 * (`deno task make-tiny`), one per backbone of the paper, in the Hugging Face layout the real
 * checkpoints have (the fields `transformers` 5.x writes, keys sorted as it sorts them).
 *
 * Default sizes (f32; about 1.3 MB per directory, 310–330 k weights):
 *
 * | part                           | blip2-opt         | llava              | minigpt4          |
 * | ------------------------------ | ----------------- | ------------------ | ----------------- |
 * | image side, patch              | 32 px, 8          | 32 px, 8           | 32 px, 8          |
 * | ViT width / layers / heads, MLP| 32 / 2 / 4, 128   | 32 / 3 / 4, 128    | 32 / 2 / 4, 128   |
 * | Q-Former width / layers / heads| 32 / 2 / 4, 128   | none               | 32 / 2 / 4, 128   |
 * | image tokens in the prompt     | 8 query tokens    | 16 patches         | 8 query tokens    |
 * | decoder                        | OPT, pre-LN, tied | LLaMA, untied head | LLaMA, untied head|
 * | width / layers / heads         | 64 / 4 / 4        | 64 / 4 / 4         | 64 / 4 / 4        |
 * | MLP                            | ReLU, 256 (4×)    | SwiGLU, 192 (3×)   | SwiGLU, 192 (3×)  |
 * | vocabulary (= the tokenizer's) | 512               | 512                | 512               |
 * | positions                      | 256 (+2 offset)   | 256, RoPE          | 256, RoPE         |
 *
 * Four decoder layers leave room on both sides of an edit layer (LiveEdit edits one layer:
 * use 1 or 2 here); the CLIP tower has three layers so that LLaVA's `vision_feature_layer: -2`
 * skips a real last layer. `layers` and `hidden` options change the decoder only (heads stay
 * 4, the MLP keeps its ratio); `imageSize`, `patchSize`, `visionHidden` and
 * `crossAttentionFrequency` change the image side, the patches, the width of the image side and
 * how often the Q-Former looks at the image.
 *
 * @module
 */
import { minigpt4ConfigJson } from "../vllm/minigpt4_config.ts";

/** The architectures `make-tiny` writes. */
export const TINY_ARCHS = ["blip2-opt", "llava", "minigpt4"] as const;

/** One of {@linkcode TINY_ARCHS}. */
export type TinyArch = typeof TINY_ARCHS[number];

/** Sizes of a ViT (BLIP-2's EVA ViT or CLIP's vision tower). */
export interface VisionDims {
  /** `hidden_size`. */
  readonly hidden: number;
  /** `intermediate_size` (MLP width). */
  readonly intermediate: number;
  /** `num_hidden_layers`. */
  readonly layers: number;
  /** `num_attention_heads`. */
  readonly heads: number;
  /** `image_size` (square, 3 channels). */
  readonly imageSize: number;
  /** `patch_size`. */
  readonly patchSize: number;
}

/** Sizes of a BLIP-2 Q-Former and its query tokens. */
export interface QFormerDims {
  /** `hidden_size`. */
  readonly hidden: number;
  /** `intermediate_size` (FFN width). */
  readonly intermediate: number;
  /** `num_hidden_layers`. */
  readonly layers: number;
  /** `num_attention_heads`. */
  readonly heads: number;
  /** `cross_attention_frequency`: layer `i` cross-attends to the image when `i % f == 0`. */
  readonly crossAttentionFrequency: number;
  /** `num_query_tokens`. */
  readonly queryTokens: number;
}

/** Sizes of the language model (OPT or LLaMA). */
export interface TextDims {
  /** `vocab_size`, equal to the tokenizer's number of ids. */
  readonly vocab: number;
  /** `hidden_size`. */
  readonly hidden: number;
  /** OPT's `ffn_dim` or LLaMA's `intermediate_size`. */
  readonly intermediate: number;
  /** `num_hidden_layers`. */
  readonly layers: number;
  /** `num_attention_heads`. */
  readonly heads: number;
  /** `num_key_value_heads` (LLaMA; equal to `heads` for OPT). */
  readonly kvHeads: number;
  /** `max_position_embeddings`. */
  readonly maxPositions: number;
}

/** All sizes of one tiny model. */
export interface TinyDims {
  /** The architecture. */
  readonly arch: TinyArch;
  /** The vision tower. */
  readonly vision: VisionDims;
  /** The Q-Former (BLIP-2 and MiniGPT-4), or `null` (LLaVA). */
  readonly qformer: QFormerDims | null;
  /** The language model. */
  readonly text: TextDims;
}

/** Decoder overrides accepted by {@linkcode tinyDims}. */
export interface TinySizeOptions {
  /** Decoder layers (default 4). */
  readonly layers?: number;
  /** Decoder width, a multiple of 8 (default 64): 4 heads of an even head size, for RoPE. */
  readonly hidden?: number;
  /** Side of the (square) images, a multiple of the patch size (default 32). */
  readonly imageSize?: number;
  /** Side of the ViT's square patches (default 8). */
  readonly patchSize?: number;
  /** Width of the ViT and the Q-Former, a multiple of 4 (default 32; MLPs 4× as wide). */
  readonly visionHidden?: number;
  /** The Q-Former's `cross_attention_frequency` (default 2: layer 0 looks at the image). */
  readonly crossAttentionFrequency?: number;
}

/** Number of ids of every tiny tokenizer. */
export const TINY_VOCAB_SIZE = 512;

const HEADS = 4;
const VISION: VisionDims = {
  hidden: 32,
  intermediate: 128,
  layers: 2,
  heads: HEADS,
  imageSize: 32,
  patchSize: 8,
};
const QFORMER: QFormerDims = {
  hidden: 32,
  intermediate: 128,
  layers: 2,
  heads: HEADS,
  crossAttentionFrequency: 2,
  queryTokens: 8,
};

/**
 * The sizes of the tiny `arch` model (see the module documentation), with the decoder's
 * `layers` and `hidden` optionally overridden. Throws naming the option when it is not a
 * positive integer (and, for `hidden`, a multiple of 8).
 *
 * @example
 * ```ts
 * import { tinyDims } from "./configs.ts";
 * const dims = tinyDims("llava", { layers: 6 });
 * if (dims.text.layers !== 6 || dims.vision.layers !== 3) throw new Error("dims");
 * ```
 */
export function tinyDims(arch: TinyArch, options: TinySizeOptions = {}): TinyDims {
  const layers = options.layers ?? 4;
  const hidden = options.hidden ?? 64;
  const imageSize = options.imageSize ?? VISION.imageSize;
  const patchSize = options.patchSize ?? VISION.patchSize;
  const visionHidden = options.visionHidden ?? VISION.hidden;
  if (!Number.isInteger(visionHidden) || visionHidden < 4 || visionHidden % HEADS !== 0) {
    throw new Error(`tiny model: visionHidden must be a multiple of ${HEADS}, got ${visionHidden}`);
  }
  const wide = { hidden: visionHidden, intermediate: 4 * visionHidden };
  const crossAttentionFrequency = options.crossAttentionFrequency ??
    QFORMER.crossAttentionFrequency;
  if (!Number.isInteger(crossAttentionFrequency) || crossAttentionFrequency < 1) {
    throw new Error(
      `tiny model: crossAttentionFrequency must be an integer >= 1, got ${crossAttentionFrequency}`,
    );
  }
  if (!Number.isInteger(layers) || layers < 1) {
    throw new Error(`tiny model: layers must be an integer >= 1, got ${layers}`);
  }
  if (!Number.isInteger(hidden) || hidden < 8 || hidden % 8 !== 0) {
    throw new Error(
      `tiny model: hidden must be a multiple of 8 (4 heads, even head size), got ${hidden}`,
    );
  }
  if (!Number.isInteger(patchSize) || patchSize < 1) {
    throw new Error(`tiny model: patchSize must be an integer >= 1, got ${patchSize}`);
  }
  if (!Number.isInteger(imageSize) || imageSize < patchSize || imageSize % patchSize !== 0) {
    throw new Error(
      `tiny model: imageSize must be a multiple of the patch size ${patchSize}, got ${imageSize}`,
    );
  }
  const opt = arch === "blip2-opt";
  const text: TextDims = {
    vocab: TINY_VOCAB_SIZE,
    hidden,
    intermediate: (opt ? 4 : 3) * hidden,
    layers,
    heads: HEADS,
    kvHeads: HEADS,
    maxPositions: 256,
  };
  return {
    arch,
    vision: {
      ...VISION,
      ...wide,
      imageSize,
      patchSize,
      layers: arch === "llava" ? 3 : VISION.layers,
    },
    qformer: arch === "llava" ? null : { ...QFORMER, ...wide, crossAttentionFrequency },
    text,
  };
}

/** Number of patch tokens of a ViT, `(image_size / patch_size)²`. */
export function numPatches(v: VisionDims): number {
  return (v.imageSize / v.patchSize) ** 2;
}

/** Token ids the configs refer to (the tiny tokenizers' layout, `src/models/tiny/tokenizer.ts`). */
export interface TinyTokenIds {
  /** `bos_token_id`. */
  readonly bos: number;
  /** `eos_token_id`. */
  readonly eos: number;
  /** `pad_token_id`, or `null` when the tokenizer has none. */
  readonly pad: number | null;
  /** `image_token_index` (LLaVA's `<image>`), or `null`. */
  readonly image: number | null;
}

/**
 * The special token ids of `arch`'s tiny tokenizer: OPT's `</s>` = 2 (BOS and EOS) and
 * `<pad>` = 1; LLaMA's `<s>` = 1 and `</s>` = 2, and for LLaVA the added tokens `<image>` and
 * `<pad>` with the last two ids (as llava-hf has 32000 and 32001); MiniGPT-4's Vicuna
 * tokenizer has neither.
 */
export function tinyTokenIds(arch: TinyArch, vocab: number): TinyTokenIds {
  if (arch === "blip2-opt") return { bos: 2, eos: 2, pad: 1, image: null };
  if (arch === "llava") return { bos: 1, eos: 2, pad: vocab - 1, image: vocab - 2 };
  return { bos: 1, eos: 2, pad: null, image: null };
}

/** Fields `PretrainedConfig.to_dict()` writes into every config and sub-config. */
function pretrainedFields(modelType: string): Record<string, unknown> {
  return {
    _name_or_path: "",
    architectures: null,
    chunk_size_feed_forward: 0,
    dtype: "float32",
    id2label: { "0": "LABEL_0", "1": "LABEL_1" },
    is_encoder_decoder: false,
    label2id: { LABEL_0: 0, LABEL_1: 1 },
    model_type: modelType,
    output_attentions: false,
    output_hidden_states: false,
    problem_type: null,
    return_dict: true,
    torch_dtype: "float32",
  };
}

/** Fields of a top-level (composite) config. */
function topLevelFields(modelType: string, architecture: string): Record<string, unknown> {
  return {
    ...pretrainedFields(modelType),
    architectures: [architecture],
    transformers_version: "5.17.0",
  };
}

/** `vision_config` of BLIP-2 (`Blip2VisionConfig`). */
function blip2VisionSection(v: VisionDims): Record<string, unknown> {
  return {
    ...pretrainedFields("blip_2_vision_model"),
    attention_dropout: 0.0,
    hidden_act: "gelu",
    hidden_size: v.hidden,
    image_size: v.imageSize,
    initializer_range: 1e-10,
    intermediate_size: v.intermediate,
    layer_norm_eps: 1e-6,
    num_attention_heads: v.heads,
    num_hidden_layers: v.layers,
    patch_size: v.patchSize,
    qkv_bias: true,
  };
}

/** `qformer_config` of BLIP-2 (`Blip2QFormerConfig`). */
function qformerSection(q: QFormerDims, encoderHidden: number): Record<string, unknown> {
  return {
    ...pretrainedFields("blip_2_qformer"),
    attention_probs_dropout_prob: 0.0,
    cross_attention_frequency: q.crossAttentionFrequency,
    encoder_hidden_size: encoderHidden,
    hidden_act: "gelu",
    hidden_dropout_prob: 0.0,
    hidden_size: q.hidden,
    initializer_range: 0.02,
    intermediate_size: q.intermediate,
    layer_norm_eps: 1e-12,
    max_position_embeddings: 512,
    num_attention_heads: q.heads,
    num_hidden_layers: q.layers,
    pad_token_id: 0,
    position_embedding_type: "absolute",
    use_qformer_text_input: false,
    vocab_size: 30522,
  };
}

/** `text_config` of BLIP-2 OPT (`OPTConfig`, pre-LN, tied head). */
function optSection(t: TextDims, ids: TinyTokenIds): Record<string, unknown> {
  return {
    ...pretrainedFields("opt"),
    _remove_final_layer_norm: false,
    activation_dropout: 0.0,
    activation_function: "relu",
    attention_dropout: 0.0,
    bos_token_id: ids.bos,
    do_layer_norm_before: true,
    dropout: 0.0,
    enable_bias: true,
    eos_token_id: ids.eos,
    ffn_dim: t.intermediate,
    hidden_size: t.hidden,
    init_std: 0.02,
    layer_norm_elementwise_affine: true,
    layerdrop: 0.0,
    max_position_embeddings: t.maxPositions,
    num_attention_heads: t.heads,
    num_hidden_layers: t.layers,
    pad_token_id: ids.pad,
    tie_word_embeddings: true,
    use_cache: true,
    vocab_size: t.vocab,
    word_embed_proj_dim: t.hidden,
  };
}

/** `vision_config` of LLaVA (`CLIPVisionConfig`, quick-GELU). */
function clipVisionSection(v: VisionDims): Record<string, unknown> {
  return {
    ...pretrainedFields("clip_vision_model"),
    attention_dropout: 0.0,
    hidden_act: "quick_gelu",
    hidden_size: v.hidden,
    image_size: v.imageSize,
    initializer_factor: 1.0,
    initializer_range: 0.02,
    intermediate_size: v.intermediate,
    layer_norm_eps: 1e-5,
    num_attention_heads: v.heads,
    num_channels: 3,
    num_hidden_layers: v.layers,
    patch_size: v.patchSize,
    projection_dim: 768,
  };
}

/** `text_config` of LLaVA or MiniGPT-4 (`LlamaConfig`, untied head). */
function llamaSection(t: TextDims, ids: TinyTokenIds, rmsNormEps: number): Record<string, unknown> {
  return {
    ...pretrainedFields("llama"),
    attention_bias: false,
    attention_dropout: 0.0,
    bos_token_id: ids.bos,
    eos_token_id: ids.eos,
    head_dim: t.hidden / t.heads,
    hidden_act: "silu",
    hidden_size: t.hidden,
    initializer_range: 0.02,
    intermediate_size: t.intermediate,
    max_position_embeddings: t.maxPositions,
    mlp_bias: false,
    num_attention_heads: t.heads,
    num_hidden_layers: t.layers,
    num_key_value_heads: t.kvHeads,
    pad_token_id: ids.pad,
    pretraining_tp: 1,
    rms_norm_eps: rmsNormEps,
    rope_parameters: { rope_theta: 10000.0, rope_type: "default" },
    rope_theta: 10000.0,
    tie_word_embeddings: false,
    use_cache: true,
    vocab_size: t.vocab,
  };
}

/**
 * The `config.json` object of the tiny model with sizes `dims`, keys sorted recursively (as
 * `transformers` writes them): `blip-2` with `vision_config`, `qformer_config`, an OPT
 * `text_config` and `num_query_tokens`; `llava` with a CLIP `vision_config`, a LLaMA
 * `text_config`, `image_token_index`, `vision_feature_layer: -2`,
 * `vision_feature_select_strategy: "default"` and `projector_hidden_act: "gelu"`; `minigpt4`
 * as `src/models/vllm/minigpt4_config.ts` defines it.
 */
export function tinyConfigJson(dims: TinyDims): Record<string, unknown> {
  const ids = tinyTokenIds(dims.arch, dims.text.vocab);
  const q = dims.qformer;
  switch (dims.arch) {
    case "blip2-opt":
      return sortKeys({
        ...topLevelFields("blip-2", "Blip2ForConditionalGeneration"),
        image_text_hidden_size: 256,
        image_token_index: null,
        initializer_factor: 1.0,
        initializer_range: 0.02,
        num_query_tokens: q!.queryTokens,
        qformer_config: qformerSection(q!, dims.vision.hidden),
        text_config: optSection(dims.text, ids),
        use_decoder_only_language_model: true,
        vision_config: blip2VisionSection(dims.vision),
      });
    case "llava":
      return sortKeys({
        ...topLevelFields("llava", "LlavaForConditionalGeneration"),
        image_seq_length: numPatches(dims.vision),
        image_token_index: ids.image,
        multimodal_projector_bias: true,
        pad_token_id: ids.pad,
        projector_hidden_act: "gelu",
        text_config: llamaSection(dims.text, ids, 1e-5),
        tie_word_embeddings: false,
        vision_config: clipVisionSection(dims.vision),
        vision_feature_layer: -2,
        vision_feature_select_strategy: "default",
      });
    case "minigpt4":
      return sortKeys(minigpt4ConfigJson({
        vision_config: blip2VisionSection(dims.vision),
        qformer_config: qformerSection(q!, dims.vision.hidden),
        text_config: llamaSection(dims.text, ids, 1e-6),
        num_query_tokens: q!.queryTokens,
      }));
  }
}

/**
 * `value` with the keys of every object sorted (arrays keep their order), as `transformers`
 * writes its JSON files.
 */
export function sortKeys<T>(value: T): T {
  if (Array.isArray(value)) return value.map(sortKeys) as T;
  if (value === null || typeof value !== "object") return value;
  const entries = Object.entries(value as Record<string, unknown>)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => [k, sortKeys(v)]);
  return Object.fromEntries(entries) as T;
}

/**
 * The MiniGPT-4 model directory: our layout for a model that has no Hugging Face format.
 *
 * MiniGPT-4 (Vicuna-7B) is BLIP-2's EVA ViT-g and Q-Former, a linear projection 768 → 4096
 * (`llama_proj`) and Vicuna (a LLaMA). Its official release is a PyTorch pickle that holds only
 * `llama_proj`; the ViT and Q-Former come from BLIP-2 and the language model from Vicuna. We
 * store it as a directory in the Hugging Face layout of `Blip2ForConditionalGeneration` with a
 * LLaMA language model, so the BLIP-2 and LLaMA loaders read it unchanged:
 *
 * - `config.json`:
 *   ```json
 *   {
 *     "model_type": "minigpt4",
 *     "vision_config": { "hidden_size": 1408, "intermediate_size": 6144,
 *       "num_hidden_layers": 39, "num_attention_heads": 16, "image_size": 224,
 *       "patch_size": 14, "layer_norm_eps": 1e-6, "hidden_act": "gelu", "qkv_bias": true },
 *     "qformer_config": { "hidden_size": 768, "num_hidden_layers": 12,
 *       "num_attention_heads": 12, "intermediate_size": 3072,
 *       "cross_attention_frequency": 2, "encoder_hidden_size": 1408,
 *       "hidden_act": "gelu", "layer_norm_eps": 1e-12 },
 *     "text_config": { "model_type": "llama", ...Vicuna-7B's config.json... },
 *     "num_query_tokens": 32,
 *     "image_placeholder": "<ImageHere>"
 *   }
 *   ```
 *   `vision_config` and `qformer_config` are BLIP-2's (copy them from any
 *   `Salesforce/blip2-*` `config.json`); `text_config` is Vicuna's `config.json` with
 *   `"model_type": "llama"`; `image_placeholder` is optional (default `<ImageHere>`).
 * - weights (`model.safetensors`, or shards with `model.safetensors.index.json`), with the
 *   keys of `Blip2ForConditionalGeneration`: `vision_model.*` (the ViT; its
 *   `post_layernorm` is MiniGPT-4's `ln_vision`), `query_tokens` `[1, 32, 768]`, `qformer.*`,
 *   `language_projection.weight` `[4096, 768]` and `.bias` (MiniGPT-4's `llama_proj`), and
 *   the language model under `language_model.`: `language_model.model.*` and
 *   `language_model.lm_head.weight`;
 * - Vicuna's tokenizer files (`tokenizer.json`, `tokenizer_config.json`,
 *   `special_tokens_map.json`) and BLIP-2's `preprocessor_config.json` (224 × 224 bicubic
 *   resize, CLIP mean and std: what MiniGPT-4's `Blip2ImageEvalProcessor` does).
 *
 * How inputs are built (as LiveEdit's `MiniGPT4ForEdit` does): a text without the placeholder
 * gets `"<ImageHere>\n"` prepended; the text before the placeholder is tokenized with BOS, the
 * text after it without; the embeddings are `[BOS, 32 image tokens, tokens of "\n" + text]`,
 * so `vt_range = [1, 33]`. No conversation template is applied.
 *
 * Assembling the directory:
 * 1. the projection, from the official pickle (one line of Python):
 *    `python -c "import torch, safetensors.torch as st; sd = torch.load('prerained_minigpt4_7b.pth', map_location='cpu')['model']; st.save_file({k.replace('llama_proj.', 'language_projection.'): v.contiguous() for k, v in sd.items() if k.startswith('llama_proj.')}, 'projection.safetensors')"`;
 * 2. ViT, query tokens and Q-Former: the `vision_model.*`, `query_tokens` and `qformer.*`
 *    tensors of the Hugging Face BLIP-2 checkpoint converted from the same LAVIS weights
 *    MiniGPT-4 loads (`Salesforce/blip2-flan-t5-xxl`, from `blip2_pretrained_flant5xxl.pth`);
 *    drop its `language_projection.*` and `language_model.*`;
 * 3. the language model: every tensor of Vicuna-7B (v0, as MiniGPT-4 uses it) with
 *    `language_model.` prepended to its key (`model.layers.0.…` →
 *    `language_model.model.layers.0.…`, `lm_head.weight` → `language_model.lm_head.weight`);
 * 4. write the union of the three as shards with an index (or one `model.safetensors`),
 *    next to the `config.json` above and the tokenizer and preprocessor files.
 *
 * @module
 */
import type { ConfigFields } from "../hf_config.ts";
import { type LlamaConfig, parseLlamaConfig } from "../llama.ts";
import { type Blip2Config, type Blip2Keys, parseBlip2Config } from "../qformer.ts";

/** The `model_type` of a MiniGPT-4 `config.json`. */
export const MINIGPT4_MODEL_TYPE = "minigpt4";

/** The string MiniGPT-4 replaces by the image's query tokens (its `<ImageHere>`). */
export const MINIGPT4_IMAGE_PLACEHOLDER = "<ImageHere>";

/** Checkpoint keys of the image side (the same as BLIP-2's). */
export const MINIGPT4_IMAGE_KEYS: Required<Blip2Keys> = {
  vision: "vision_model.",
  queryTokens: "query_tokens",
  qformer: "qformer.",
  projection: "language_projection",
};

/** Prefix of the `LlamaForCausalLM` in the checkpoint. */
export const MINIGPT4_LANGUAGE_MODEL_PREFIX = "language_model.";

/** A parsed MiniGPT-4 `config.json`. */
export interface MiniGpt4Config {
  /** ViT, Q-Former, number of query tokens and the projection's output width. */
  readonly image: Blip2Config;
  /** `text_config`, a LLaMA (Vicuna) config. */
  readonly text: LlamaConfig;
  /** `image_placeholder` (default {@linkcode MINIGPT4_IMAGE_PLACEHOLDER}). */
  readonly imagePlaceholder: string;
}

/**
 * Parses a MiniGPT-4 `config.json` (see the module documentation); throws naming the file and
 * the field that is missing or wrong (`model_type` must be `minigpt4` and
 * `text_config.model_type` `llama`).
 */
export function parseMiniGpt4Config(fields: ConfigFields): MiniGpt4Config {
  fields.oneOf("model_type", [MINIGPT4_MODEL_TYPE]);
  return {
    image: parseBlip2Config(fields),
    text: parseLlamaConfig(fields.section("text_config")),
    imagePlaceholder: fields.string("image_placeholder", MINIGPT4_IMAGE_PLACEHOLDER),
  };
}

/** The sections of a MiniGPT-4 `config.json`, as {@linkcode minigpt4ConfigJson} takes them. */
export interface MiniGpt4ConfigSections {
  /** `vision_config` (BLIP-2 ViT fields). */
  readonly vision_config: Record<string, unknown>;
  /** `qformer_config` (BLIP-2 Q-Former fields). */
  readonly qformer_config: Record<string, unknown>;
  /** `text_config` (LLaMA fields; `model_type` is set to `llama`). */
  readonly text_config: Record<string, unknown>;
  /** `num_query_tokens` (32 in the released model). */
  readonly num_query_tokens: number;
}

/**
 * The `config.json` object of a MiniGPT-4 directory with the given sections (for writers of
 * such directories, e.g. tiny random models).
 *
 * @example
 * ```ts
 * import { minigpt4ConfigJson } from "./minigpt4_config.ts";
 * const json = minigpt4ConfigJson({
 *   vision_config: { hidden_size: 32 },
 *   qformer_config: { hidden_size: 32 },
 *   text_config: { hidden_size: 32 },
 *   num_query_tokens: 4,
 * });
 * if (json.model_type !== "minigpt4") throw new Error("model_type");
 * ```
 */
export function minigpt4ConfigJson(sections: MiniGpt4ConfigSections): Record<string, unknown> {
  return {
    model_type: MINIGPT4_MODEL_TYPE,
    architectures: ["MiniGPT4"],
    vision_config: sections.vision_config,
    qformer_config: sections.qformer_config,
    text_config: { ...sections.text_config, model_type: "llama" },
    num_query_tokens: sections.num_query_tokens,
    image_placeholder: MINIGPT4_IMAGE_PLACEHOLDER,
  };
}

/**
 * LLaVA-1.5 (`LlavaForConditionalGeneration`, `model_type` `llava`) as a {@linkcode Vllm}: the
 * CLIP tower's selected features through the multi-modal projector (`llava_projector.ts`)
 * replace the `<image>` token of the prompt, before LLaMA/Vicuna.
 *
 * Token layout, as LiveEdit's `LlavaForEdit`: a text given with an image but without `<image>`
 * gets `"<image>\n"` prepended (`auto_add_img_special_token`); its one `<image>` token is
 * expanded to the `n_v` vision tokens (576 at 336 px; `(image_size / patch_size)²`), so
 * `vt_range` starts at the `<image>` token (1, after BOS, for the added prefix). A text without
 * an image must not contain `<image>`.
 *
 * Checkpoints store the language model as `language_model.model.*` + `language_model.lm_head`
 * or (transformers ≥ 4.52) `model.language_model.*` + `lm_head`; both load.
 *
 * @example
 * ```ts ignore
 * const vllm = await loadLlava(await openModelDir("llava-hf/llava-1.5-7b-hf"));
 * const inputs = await vllm.inputs([{ text: "What is this?", image: "cat.jpg" }]);
 * ```
 *
 * @module
 */
import type { Graph, Value } from "../../graph/ir.ts";
import type { ModelDir } from "../../io/model_dir.ts";
import { type HfTokenizer, IMAGE_TOKEN } from "../../io/tokenizer.ts";
import { numPatches } from "../layers.ts";
import type { DecoderKeys } from "../decoder.ts";
import { ConfigFields } from "../hf_config.ts";
import { loadLlama } from "../llama.ts";
import {
  llavaImage,
  type LlavaImageConfig,
  llavaKeyPrefix,
  loadLlavaImage,
  parseLlavaImageConfig,
} from "../llava_projector.ts";
import { type ComputeDType, WeightStore } from "../weights.ts";
import type { TokenLayout } from "./processor.ts";
import { Vllm, type VllmFamily } from "./vllm.ts";

/** The `model_type` of LLaVA. */
export const LLAVA_MODEL_TYPE = "llava";

/** LLaVA's default `image_token_index` (llava-1.5-7b-hf). */
export const LLAVA_DEFAULT_IMAGE_TOKEN_INDEX = 32000;

/**
 * `ids` with each `imageTokenId` repeated `count` times (how transformers ≥ 4.47 processors
 * write LLaVA prompts; older versions expanded the single token inside the model).
 */
export function expandImageToken(
  ids: readonly number[],
  imageTokenId: number,
  count: number,
): number[] {
  return ids.flatMap((id) => id === imageTokenId ? new Array(count).fill(id) : [id]);
}

/** LLaVA-1.5 with a LLaMA language model. */
export class LlavaVllm extends Vllm {
  /** Always `"llava"`. */
  readonly family: VllmFamily = LLAVA_MODEL_TYPE;
  /** The image side of the config. */
  readonly imageConfig: LlavaImageConfig;
  /** The checkpoint's weights. */
  readonly store: WeightStore;
  /** `image_token_index` of the config. */
  readonly imageTokenId: number;
  /** `""` or `"model."`: where the checkpoint keeps the vision tower and projector. */
  readonly keyPrefix: string;

  /** Use {@linkcode loadLlava}. */
  constructor(
    dir: ModelDir,
    parts: {
      imageConfig: LlavaImageConfig;
      store: WeightStore;
      decoder: Vllm["decoder"];
      imageTokenId: number;
      keyPrefix: string;
    },
  ) {
    const v = parts.imageConfig.vision;
    super({
      dir,
      decoder: parts.decoder,
      numImageTokens: numPatches(v) + (parts.imageConfig.features.strategy === "full" ? 1 : 0),
      imageSize: v.imageSize,
      imagePlaceholder: IMAGE_TOKEN,
    });
    this.imageConfig = parts.imageConfig;
    this.store = parts.store;
    this.imageTokenId = parts.imageTokenId;
    this.keyPrefix = parts.keyPrefix;
  }

  /** Vision slots keep the image token id, as in HF's merged `input_ids`. */
  get imageSlotId(): number {
    return this.imageTokenId;
  }

  /** The projected CLIP features `[b, n_v, d]`. */
  imageTokens(g: Graph, pixelValues: Value): Value {
    const model = loadLlavaImage(g, this.store, this.imageConfig, this.keyPrefix);
    return llavaImage(model, pixelValues).imageFeatures;
  }

  /** `tokens("<image>\n" + text)` (prefix added when missing) with `<image>` expanded. */
  layout(tokenizer: HfTokenizer, text: string, withImage: boolean): TokenLayout {
    const placeholder = IMAGE_TOKEN;
    if (!withImage) {
      if (text.includes(placeholder)) {
        throw new Error(`llava: the text ${JSON.stringify(text)} has ${placeholder} but no image`);
      }
      return { ids: tokenizer.encode(text), vision: null };
    }
    const full = text.includes(placeholder) ? text : `${placeholder}\n${text}`;
    const tokenId = tokenizer.imageTokenId(placeholder);
    if (tokenId !== this.imageTokenId) {
      throw new Error(
        `${tokenizer.dir}: ${placeholder} is token ${tokenId} but ${this.dir.configPath} has image_token_index ${this.imageTokenId}`,
      );
    }
    const ids = tokenizer.encode(full);
    const at = ids.indexOf(tokenId);
    if (at < 0 || ids.indexOf(tokenId, at + 1) >= 0) {
      throw new Error(
        `llava: one image needs exactly one ${placeholder} in ${JSON.stringify(text)}`,
      );
    }
    const n = this.numImageTokens;
    return { ids: expandImageToken(ids, tokenId, n), vision: [at, at + n] };
  }
}

/**
 * Loads LLaVA from an opened model directory (`model_type` `llava`, `text_config.model_type`
 * `llama`); every weight is checked against the config, and a missing or misshaped one is an
 * error naming the checkpoint file and key.
 */
export async function loadLlava(
  dir: ModelDir,
  computeDtype: ComputeDType = "f32",
): Promise<LlavaVllm> {
  const fields = new ConfigFields(dir.config, dir.configPath);
  fields.oneOf("model_type", [LLAVA_MODEL_TYPE]);
  const text = fields.section("text_config");
  text.oneOf("model_type", ["llama"]);
  const store = await WeightStore.open(dir.checkpoint, computeDtype);
  const keyPrefix = llavaKeyPrefix(store);
  const keys: DecoderKeys = keyPrefix === ""
    ? { model: "language_model.model.", lmHead: "language_model.lm_head.weight" }
    : { model: `${keyPrefix}language_model.`, lmHead: "lm_head.weight" };
  const decoder = await loadLlama({ config: text, store, prefix: keys });
  const imageTokenId = fields.has("image_token_index")
    ? fields.int("image_token_index", undefined, 0)
    : fields.int("image_token_id", LLAVA_DEFAULT_IMAGE_TOKEN_INDEX, 0);
  const vllm = new LlavaVllm(dir, {
    imageConfig: parseLlavaImageConfig(fields),
    store,
    decoder,
    imageTokenId,
    keyPrefix,
  });
  vllm.checkImageWeights();
  return vllm;
}

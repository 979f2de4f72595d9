/**
 * MiniGPT-4 (Vicuna) as a {@linkcode Vllm}: BLIP-2's ViT and Q-Former, a linear projection
 * (`llama_proj`, stored as `language_projection`) and a LLaMA, loaded from the directory layout
 * of `minigpt4_config.ts`.
 *
 * Token layout, as LiveEdit's `MiniGPT4ForEdit` (`get_context_emb`): a text given with an image
 * but without `<ImageHere>` gets `"<ImageHere>\n"` prepended; the text before the placeholder is
 * tokenized with BOS, the text after it without, and the 32 projected query outputs go between,
 * so with the added prefix the sequence is `[BOS, 32 vision tokens, tokens of "\n" + text]` and
 * `vt_range = [1, 33]`. No conversation template is applied. A text without an image is
 * tokenized as is (with BOS) and must not contain the placeholder.
 *
 * @example
 * ```ts ignore
 * const vllm = await loadMiniGpt4(await openModelDir("minigpt4-vicuna-7b"));
 * const batch = await vllm.prepare([{ image: "cat.jpg", prompt: "What is this?", target: "a cat" }]);
 * ```
 *
 * @module
 */
import type { Graph, Value } from "../../graph/ir.ts";
import type { ModelDir } from "../../io/model_dir.ts";
import type { HfTokenizer } from "../../io/tokenizer.ts";
import { ConfigFields } from "../hf_config.ts";
import { loadLlama } from "../llama.ts";
import { blip2ImagePrefix, loadBlip2ImagePrefix } from "../qformer.ts";
import { type ComputeDType, WeightStore } from "../weights.ts";
import {
  MINIGPT4_IMAGE_KEYS,
  MINIGPT4_LANGUAGE_MODEL_PREFIX,
  type MiniGpt4Config,
  parseMiniGpt4Config,
} from "./minigpt4_config.ts";
import type { TokenLayout } from "./processor.ts";
import { Vllm, type VllmFamily } from "./vllm.ts";

/** MiniGPT-4 with a Vicuna (LLaMA) language model. */
export class MiniGpt4Vllm extends Vllm {
  /** Always `"minigpt4"`. */
  readonly family: VllmFamily = "minigpt4";
  /** The parsed config. */
  readonly minigpt4Config: MiniGpt4Config;
  /** The checkpoint's weights. */
  readonly store: WeightStore;

  /** Use {@linkcode loadMiniGpt4}. */
  constructor(
    dir: ModelDir,
    config: MiniGpt4Config,
    store: WeightStore,
    decoder: Vllm["decoder"],
  ) {
    super({
      dir,
      decoder,
      numImageTokens: config.image.numQueryTokens,
      imageSize: config.image.vision.imageSize,
      imagePlaceholder: config.imagePlaceholder,
    });
    this.minigpt4Config = config;
    this.store = store;
  }

  /** Vision slots hold id 0 (any id would do: the embedding is replaced). */
  get imageSlotId(): number {
    return 0;
  }

  /** `llama_proj(qformer(query_tokens, ln_vision(vit(pixels))))` `[b, 32, d]`. */
  imageTokens(g: Graph, pixelValues: Value): Value {
    const model = loadBlip2ImagePrefix(
      g,
      this.store,
      this.minigpt4Config.image,
      MINIGPT4_IMAGE_KEYS,
    );
    return blip2ImagePrefix(model, pixelValues).imageTokens;
  }

  /** `tokens(before, BOS) + [32 vision slots] + tokens(after)` around the placeholder. */
  layout(tokenizer: HfTokenizer, text: string, withImage: boolean): TokenLayout {
    const placeholder = this.minigpt4Config.imagePlaceholder;
    if (!withImage) {
      if (text.includes(placeholder)) {
        throw new Error(
          `minigpt4: the text ${JSON.stringify(text)} has ${placeholder} but no image`,
        );
      }
      return { ids: tokenizer.encode(text), vision: null };
    }
    const full = text.includes(placeholder) ? text : `${placeholder}\n${text}`;
    const segments = full.split(placeholder);
    if (segments.length !== 2) {
      throw new Error(
        `minigpt4: one image needs exactly one ${placeholder} in ${JSON.stringify(text)}`,
      );
    }
    const before = tokenizer.encode(segments[0]);
    const after = tokenizer.encode(segments[1], { addSpecialTokens: false });
    const n = this.numImageTokens;
    return {
      ids: [...before, ...new Array(n).fill(this.imageSlotId), ...after],
      vision: [before.length, before.length + n],
    };
  }
}

/**
 * Loads MiniGPT-4 from an opened model directory (`model_type` `minigpt4`, see
 * `minigpt4_config.ts`); every weight is checked against the config, and a missing or
 * misshaped one is an error naming the checkpoint file and key.
 */
export async function loadMiniGpt4(
  dir: ModelDir,
  computeDtype: ComputeDType = "f32",
): Promise<MiniGpt4Vllm> {
  const fields = new ConfigFields(dir.config, dir.configPath);
  const config = parseMiniGpt4Config(fields);
  const store = await WeightStore.open(dir.checkpoint, computeDtype);
  const decoder = await loadLlama({
    config: fields.section("text_config"),
    store,
    prefix: MINIGPT4_LANGUAGE_MODEL_PREFIX,
  });
  const vllm = new MiniGpt4Vllm(dir, config, store, decoder);
  vllm.checkImageWeights();
  return vllm;
}

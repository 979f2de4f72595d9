/**
 * BLIP-2 OPT (`Blip2ForConditionalGeneration`, `model_type` `blip-2`) as a {@linkcode Vllm}:
 * the ViT → Q-Former → `language_projection` prefix (`qformer.ts`) before OPT
 * (`language_model.*`).
 *
 * Token layout, as LiveEdit's `BLIP2OPTForEdit`: with an image the `num_query_tokens`
 * projected query outputs come first, then the text's tokens (with OPT's BOS `</s>`), so
 * `vt_range = [0, 32]`; without one the text's tokens alone. BLIP-2 has no image placeholder.
 *
 * @example
 * ```ts ignore
 * const vllm = await loadBlip2Opt(await openModelDir("Salesforce/blip2-opt-2.7b"));
 * const batch = await vllm.prepare([{ image: "cat.jpg", prompt: "What is this?", target: "a cat" }]);
 * ```
 *
 * @module
 */
import type { Graph, Value } from "../../graph/ir.ts";
import type { ModelDir } from "../../io/model_dir.ts";
import type { HfTokenizer } from "../../io/tokenizer.ts";
import { ConfigFields } from "../hf_config.ts";
import { loadOpt } from "../opt.ts";
import {
  type Blip2Config,
  blip2ImagePrefix,
  loadBlip2ImagePrefix,
  parseBlip2Config,
} from "../qformer.ts";
import { type ComputeDType, WeightStore } from "../weights.ts";
import type { TokenLayout } from "./processor.ts";
import { Vllm, type VllmFamily } from "./vllm.ts";

/** The `model_type` of BLIP-2. */
export const BLIP2_MODEL_TYPE = "blip-2";

/** BLIP-2 with an OPT language model. */
export class Blip2OptVllm extends Vllm {
  /** Always `"blip-2"`. */
  readonly family: VllmFamily = BLIP2_MODEL_TYPE;
  /** The image side of the config. */
  readonly imageConfig: Blip2Config;
  /** The checkpoint's weights. */
  readonly store: WeightStore;

  /** Use {@linkcode loadBlip2Opt}. */
  constructor(
    dir: ModelDir,
    imageConfig: Blip2Config,
    store: WeightStore,
    decoder: Vllm["decoder"],
  ) {
    super({
      dir,
      decoder,
      numImageTokens: imageConfig.numQueryTokens,
      imageSize: imageConfig.vision.imageSize,
      imagePlaceholder: null,
    });
    this.imageConfig = imageConfig;
    this.store = store;
  }

  /** Vision slots hold id 0 (any id would do: the embedding is replaced). */
  get imageSlotId(): number {
    return 0;
  }

  /** `language_projection(qformer(query_tokens, vision_model(pixels)))` `[b, Q, d]`. */
  imageTokens(g: Graph, pixelValues: Value): Value {
    const prefix = loadBlip2ImagePrefix(g, this.store, this.imageConfig);
    return blip2ImagePrefix(prefix, pixelValues).imageTokens;
  }

  /** `[Q vision slots] + tokens(text)` with an image, else `tokens(text)`. */
  layout(tokenizer: HfTokenizer, text: string, withImage: boolean): TokenLayout {
    const ids = tokenizer.encode(text);
    if (!withImage) return { ids, vision: null };
    const n = this.numImageTokens;
    return { ids: [...new Array(n).fill(this.imageSlotId), ...ids], vision: [0, n] };
  }
}

/**
 * Loads BLIP-2 OPT from an opened model directory (`model_type` `blip-2`,
 * `text_config.model_type` `opt`); every weight is checked against the config, and a missing
 * or misshaped one is an error naming the checkpoint file and key.
 */
export async function loadBlip2Opt(
  dir: ModelDir,
  computeDtype: ComputeDType = "f32",
): Promise<Blip2OptVllm> {
  const fields = new ConfigFields(dir.config, dir.configPath);
  fields.oneOf("model_type", [BLIP2_MODEL_TYPE]);
  const text = fields.section("text_config");
  text.oneOf("model_type", ["opt"]);
  const store = await WeightStore.open(dir.checkpoint, computeDtype);
  const decoder = await loadOpt({ config: text, store, prefix: "language_model." });
  const vllm = new Blip2OptVllm(dir, parseBlip2Config(fields), store, decoder);
  vllm.checkImageWeights();
  return vllm;
}

/**
 * The two Hugging Face directory layouts a tiny model can be written in, which the loaders read
 * alike:
 *
 * - `v4`, as `transformers` 4 saves a model: the image processor in `preprocessor_config.json`,
 *   the special tokens in `special_tokens_map.json` and in `tokenizer_config.json` (with
 *   `add_bos_token` and `added_tokens_decoder`).
 * - `v5`, as `transformers` 5 saves it: one `processor_config.json` with the image processor
 *   nested under `image_processor` (a fast processor, unset fields `null`) next to the
 *   processor's own fields, and a `tokenizer_config.json` that names the special tokens as plain
 *   strings (`backend: "tokenizers"`); no `preprocessor_config.json` and no
 *   `special_tokens_map.json` (what `encode` adds comes from `tokenizer.json`'s post-processor).
 *
 * `config.json`, `model.safetensors` and `tokenizer.json` are the same in both.
 *
 * @module
 */
import { PREPROCESSOR_CONFIG_FILE, PROCESSOR_CONFIG_FILE } from "../../io/image.ts";
import { SINGLE_FILE } from "../../io/sharded.ts";
import {
  SPECIAL_TOKENS_MAP_FILE,
  TOKENIZER_CONFIG_FILE,
  TOKENIZER_FILE,
} from "../../io/tokenizer.ts";

/** The layouts, by the major version of `transformers` that writes them. */
export const HF_LAYOUTS = ["v4", "v5"] as const;

/** One of {@linkcode HF_LAYOUTS}. */
export type HfLayout = typeof HF_LAYOUTS[number];

/** The files of a tiny model directory in each layout, sorted. */
export const TINY_FILES: Readonly<Record<HfLayout, readonly string[]>> = {
  v4: [
    "config.json",
    SINGLE_FILE,
    PREPROCESSOR_CONFIG_FILE,
    SPECIAL_TOKENS_MAP_FILE,
    TOKENIZER_FILE,
    TOKENIZER_CONFIG_FILE,
  ].sort(),
  v5: ["config.json", SINGLE_FILE, PROCESSOR_CONFIG_FILE, TOKENIZER_FILE, TOKENIZER_CONFIG_FILE]
    .sort(),
};

/** Throws naming the valid layouts unless `layout` is one of them. */
export function checkLayout(layout: string): HfLayout {
  if (!(HF_LAYOUTS as readonly string[]).includes(layout)) {
    throw new Error(
      `layout must be one of ${HF_LAYOUTS.join(", ")}, got ${JSON.stringify(layout)}`,
    );
  }
  return layout as HfLayout;
}

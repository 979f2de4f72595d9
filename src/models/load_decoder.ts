/**
 * The decoder registry: a config's `model_type` picks the architecture (`opt.ts`, `llama.ts`).
 *
 * @example
 * ```ts ignore
 * const lm = await loadDecoder("path/to/model"); // OptDecoder or LlamaDecoder
 * const vllmLm = await loadDecoder({ config: fields.section("text_config"), store, prefix: "language_model." });
 * ```
 *
 * @module
 */
import { type CausalDecoder, type DecoderSource, openDecoderDir } from "./decoder.ts";
import { loadLlama } from "./llama.ts";
import { loadOpt } from "./opt.ts";
import type { ComputeDType } from "./weights.ts";

/** The `model_type`s {@linkcode loadDecoder} knows and the loaders they map to. */
export const DECODER_LOADERS = {
  opt: loadOpt,
  llama: loadLlama,
} as const;

/**
 * Loads the decoder of `source` (see {@linkcode DecoderSource}) by its config's `model_type`;
 * an unsupported type is an error naming the config file, the field and the supported types.
 */
export async function loadDecoder(
  source: DecoderSource,
  computeDtype: ComputeDType = "f32",
): Promise<CausalDecoder> {
  const resolved = typeof source === "string" ? await openDecoderDir(source, computeDtype) : source;
  const type = resolved.config.oneOf("model_type", ["opt", "llama"]);
  return await DECODER_LOADERS[type](resolved, computeDtype);
}

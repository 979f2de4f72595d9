/**
 * The prompt rules of spec §5, in one place.
 *
 * - E-VQA appends {@linkcode ANSWER_SUFFIX} (`" The answer is:"`) to the `src` and `rephrase`
 *   prompts (so to the request, the text rephrase and the image rephrase, which asks `src`).
 * - All three data sets append `"?"` to `loc` and {@linkcode ANSWER_SUFFIX} to `m_loc_q`.
 * - E-IC (and VLKEB) keep the `src`/`rephrase` prompts as they are.
 * - Targets are kept as written in the JSON. The leading-space rule
 *   ({@linkcode withLeadingSpace}) is *not* applied by the loaders: the model wrapper applies
 *   it once, where it joins prompt and target into one token sequence (as the authors' model
 *   wrappers do at tokenization), so it must not be applied to the records beforehand.
 *
 * @module
 */

/** What E-VQA appends to its question prompts, and all data sets to `m_loc_q`. */
export const ANSWER_SUFFIX = " The answer is:";

/** What all data sets append to the text-locality question `loc`. */
export const LOC_SUFFIX = "?";

/** How one data set turns the JSON prompts into model prompts. */
export interface PromptRules {
  /** Applied to `src` (request and image rephrase) and `rephrase` (text rephrase). */
  readonly edit: (prompt: string) => string;
  /** Applied to `loc` (text locality). */
  readonly loc: (prompt: string) => string;
  /** Applied to `m_loc_q` (image locality). */
  readonly imageLoc: (prompt: string) => string;
}

const keep = (p: string) => p;
const answer = (p: string) => p + ANSWER_SUFFIX;
const question = (p: string) => p + LOC_SUFFIX;

/** The prompt rules of each data set, by data name. */
export const PROMPT_RULES: Readonly<Record<"EVQA" | "EIC" | "VLKEB", PromptRules>> = {
  EVQA: { edit: answer, loc: question, imageLoc: answer },
  EIC: { edit: keep, loc: question, imageLoc: answer },
  VLKEB: { edit: keep, loc: question, imageLoc: answer },
};

/**
 * The target as it is appended to `prompt` (spec §5): with a leading space added when neither
 * the prompt ends in a space or newline nor the target starts with one. Apply it exactly once,
 * where prompt and target are joined for tokenization; the loaders leave targets as written.
 *
 * @example
 * ```ts
 * import { withLeadingSpace } from "./prompts.ts";
 * if (withLeadingSpace("Q? The answer is:", "2") !== " 2") throw new Error("added");
 * if (withLeadingSpace("a photo of ", "a dog") !== "a dog") throw new Error("prompt space");
 * if (withLeadingSpace("a photo of", " a dog") !== " a dog") throw new Error("target space");
 * ```
 */
export function withLeadingSpace(prompt: string, target: string): string {
  const promptEnds = prompt.endsWith(" ") || prompt.endsWith("\n");
  const targetStarts = target.startsWith(" ") || target.startsWith("\n");
  return promptEnds || targetStarts ? target : " " + target;
}

/**
 * Checking that examples fit the backbone's context before any session runs: a token sequence
 * longer than the language model's position table fails deep inside ONNX Runtime (a `Gather`
 * index out of range, after the whole graph was built and the vision tower ran), so the length
 * is measured up front, with the backbone's own token layout: BOS, the prompt, the target with
 * its leading space, and the image's vision tokens (32 query tokens for BLIP-2 and MiniGPT-4,
 * 576 patch tokens for LLaVA-1.5 at 336 px).
 *
 * When generating, the tokens to generate count too. A prompt that does not fit can be cut from
 * the left (`truncate`), as the Hugging Face processors do with `truncation_side="left"`: the
 * end of the prompt, next to the answer, is kept.
 *
 * @module
 */
import { DataError } from "../data/errors.ts";
import { sampleExamples, withExamples } from "../data/examples.ts";
import { withLeadingSpace } from "../data/prompts.ts";
import type { EditSample } from "../data/sample.ts";
import type { HfTokenizer } from "../io/tokenizer.ts";
import { contextLengthOf } from "./backbones.ts";
import type { Request } from "./vllm/processor.ts";
import type { Vllm } from "./vllm/vllm.ts";

/**
 * The backbone's context in tokens: the field its row of the backbone table names, its
 * language model's `max_position_embeddings` (the positions a sequence may use, vision tokens
 * included).
 */
export function contextLength(vllm: Vllm): number {
  return contextLengthOf(vllm.dir);
}

/** How long an example is, in tokens of the language model's sequence. */
export interface ExampleLength {
  /** BOS and the prompt. */
  readonly prompt: number;
  /** The target (or the tokens to generate). */
  readonly target: number;
  /** The vision tokens of the image (0 without one). */
  readonly image: number;
  /** All of them: the sequence length. */
  readonly total: number;
}

/** An example too long for the context; the message gives the token counts. */
export class ContextError extends Error {
  /** The measured lengths. */
  readonly length: ExampleLength;
  /** The context. */
  readonly context: number;

  /** Builds the message from the lengths, the context and the model's name. */
  constructor(length: ExampleLength, context: number, model: string, generating: boolean) {
    const parts = [
      `prompt ${length.prompt}`,
      `${generating ? "new tokens" : "target"} ${length.target}`,
      ...(length.image > 0 ? [`image ${length.image}`] : []),
    ];
    super(
      `${parts.join(" + ")} = ${length.total} tokens, more than the ${context}-token context ` +
        `of ${model}`,
    );
    this.name = "ContextError";
    this.length = length;
    this.context = context;
  }
}

/** Options of {@linkcode ContextBudget.fit}. */
export interface FitOptions {
  /** Tokens to generate after the prompt (the target is then not counted); default 0. */
  readonly maxNewTokens?: number;
  /** Cut the prompt from the left until the example fits (default false: throw). */
  readonly truncate?: boolean;
}

/** What {@linkcode ContextBudget.fit} gives. */
export interface Fitted<T extends Request> {
  /** The example, with its prompt cut when it had to be. */
  readonly example: T;
  /** How many characters were cut from the start of the prompt (0: none). */
  readonly cut: number;
}

/**
 * Measures examples against one backbone's context (see the module documentation).
 *
 * @example
 * ```ts ignore
 * const vllm = await loadVllm("models/blip2-opt-2.7b");
 * const budget = new ContextBudget(vllm, await vllm.tokenizer(), "blip2-opt-2.7b");
 * budget.fit({ image: "cat.jpg", prompt: "What is this?", target: "a cat" }); // fits
 * vllm.close();
 * ```
 */
export class ContextBudget {
  /** The backbone's context in tokens. */
  readonly context: number;
  /** The backbone's name, for errors. */
  readonly model: string;
  readonly #vllm: Vllm;
  readonly #tokenizer: HfTokenizer;
  /** Sequence lengths already measured, by image presence and text (data sets repeat them). */
  readonly #known = new Map<string, number>();

  /** Wraps a loaded backbone and its tokenizer. */
  constructor(vllm: Vllm, tokenizer: HfTokenizer, model: string) {
    this.#vllm = vllm;
    this.#tokenizer = tokenizer;
    this.context = contextLength(vllm);
    this.model = model;
  }

  /** The length of `example` (generating `maxNewTokens` after its prompt, when given). */
  measure(example: Request, maxNewTokens = 0): ExampleLength {
    const image = hasImage(example) ? this.#vllm.numImageTokens : 0;
    const promptOnly = this.#tokens(example, example.prompt);
    const total = this.#total(example, maxNewTokens);
    return { prompt: promptOnly - image, target: total - promptOnly, image, total };
  }

  /**
   * `example` if it fits the context; else, with `truncate`, the example with a cut from the
   * start of its prompt that fits (the shortest, but for the rare text where cutting characters
   * adds tokens). Throws a {@linkcode ContextError} giving the token counts when it does not fit
   * (with `truncate`: not even with the whole prompt cut).
   */
  fit<T extends Request>(example: T, options: FitOptions = {}): Fitted<T> {
    const { maxNewTokens = 0, truncate = false } = options;
    if (this.#total(example, maxNewTokens) <= this.context) return { example, cut: 0 };
    const error = () =>
      new ContextError(
        this.measure(example, maxNewTokens),
        this.context,
        this.model,
        maxNewTokens > 0,
      );
    if (!truncate) throw error();
    const prompt = example.prompt;
    const cutAt = (k: number) => ({ ...example, prompt: prompt.slice(k) });
    const fitsFrom = (k: number) => this.#total(cutAt(k), maxNewTokens) <= this.context;
    if (!fitsFrom(prompt.length)) throw error();
    let lo = 0, hi = prompt.length; // cutting lo characters does not fit, cutting hi does
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (fitsFrom(mid)) hi = mid;
      else lo = mid;
    }
    // Never start inside a surrogate pair.
    while (hi < prompt.length && /[\uDC00-\uDFFF]/.test(prompt[hi])) hi++;
    return { example: cutAt(hi), cut: hi };
  }

  /** Tokens of `text` as the sequence of `example` (its image included). */
  #tokens(example: Request, text: string): number {
    const withImage = hasImage(example);
    const key = `${withImage ? 1 : 0}${text}`;
    let n = this.#known.get(key);
    if (n === undefined) {
      n = this.#vllm.layout(this.#tokenizer, text, withImage).ids.length;
      this.#known.set(key, n);
    }
    return n;
  }

  /** The sequence length of `example`: prompt and target, or prompt and new tokens. */
  #total(example: Request, maxNewTokens: number): number {
    if (maxNewTokens > 0) return this.#tokens(example, example.prompt) + maxNewTokens;
    const target = withLeadingSpace(example.prompt, example.target);
    return this.#tokens(example, example.prompt + target);
  }
}

/** What {@linkcode fitSamples} gives. */
export interface FittedSamples {
  /** The samples that fit (with cut prompts, where `truncate` cut them), in order. */
  readonly samples: readonly EditSample[];
  /** One error per record that does not fit, naming the file, record, field and token counts. */
  readonly problems: readonly DataError[];
  /** How many prompts were cut. */
  readonly cutPrompts: number;
  /** In how many records. */
  readonly cutRecords: number;
}

/**
 * Fits every example of `samples` (from annotation file `file`) to `budget`'s context, cutting
 * prompts from the left when `truncate` is set (see {@linkcode ContextBudget.fit}). A record
 * with an example that does not fit is left out of `samples` and reported in `problems`.
 */
export function fitSamples(
  budget: ContextBudget,
  samples: readonly EditSample[],
  file: string,
  truncate: boolean,
): FittedSamples {
  const kept: EditSample[] = [], problems: DataError[] = [];
  let cutPrompts = 0, cutRecords = 0;
  for (const sample of samples) {
    let cuts = 0;
    let problem: DataError | undefined;
    const examples = sampleExamples(sample).map(({ example, promptField, targetField }) => {
      if (problem !== undefined) return example;
      try {
        const fitted = budget.fit(example, { truncate });
        if (fitted.cut > 0) cuts++;
        return fitted.example;
      } catch (error) {
        if (!(error instanceof ContextError)) throw error;
        problem = new DataError(
          file,
          { record: sample.index, field: promptField },
          `is too long with its target '${targetField}': ${error.message}` +
            (truncate ? " even with the whole prompt cut" : " (--truncate-prompt cuts prompts)"),
          { cause: error },
        );
        return example;
      }
    });
    if (problem !== undefined) {
      problems.push(problem);
      continue;
    }
    kept.push(cuts === 0 ? sample : withExamples(sample, examples));
    cutPrompts += cuts;
    if (cuts > 0) cutRecords++;
  }
  return { samples: kept, problems, cutPrompts, cutRecords };
}

function hasImage(example: Request): boolean {
  return example.image !== undefined && example.image !== null;
}

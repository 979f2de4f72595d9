/**
 * The VLLMs' processor: the host-side preparation of inputs with the authors' rules
 * (`BaseVLLMForEdit` of the LiveEdit release), apart from graph building as transformers.js
 * keeps processors apart from models. It needs of a model only its tokenizer, its image
 * processor, its token layout and its image size ({@linkcode ProcessorSource}; `Vllm` is one
 * and offers these functions as methods).
 *
 * - {@linkcode processInputs} for texts (and images) gives the graph feeds with `vt_range`
 *   per row; {@linkcode prepareRequests} for `prompt + target` requests adds the label ids and
 *   masks (a space is prepended to the target when neither the prompt ends with a space or
 *   newline nor the target starts with one; labels are the tokens of `prompt + target` rolled
 *   by one, masked from the last prompt token to the second-to-last token; right padding;
 *   both sliced from the shortest prompt's last token). Losses read the last `L` positions of
 *   the logits, `L` the length of the labels (`labelLoss`, `logitKLLoss`).
 *
 * Feeds (names in {@linkcode VLLM_INPUTS}): `input_ids` i64 `[b, T]` (text ids; vision slots
 * hold any valid id), `attention_mask` i64 `[b, T]` (1 = token or vision token, 0 = padding),
 * and with images `image_index` i64 `[b, T]` (the vision token a slot takes, -1 for text and
 * padding) and `pixel_values` f32 `[b, 3, H, W]`.
 *
 * @module
 */
import { withLeadingSpace } from "../../data/prompts.ts";
import type { ImageSource } from "../../data/images.ts";
import type { HfTokenizer } from "../../io/tokenizer.ts";
import { Tensor } from "../../tensor/tensor.ts";

/** A half-open token range `[start, end)` of the language model's sequence. */
export type TokenRange = readonly [number, number];

/** An image: a path (preprocessed by the directory's image processor) or pixel values. */
export type ImageInput = string | Tensor<"f32">;

/** A text and, optionally, its image. */
export interface TextInput {
  /** The text (for LLaVA/MiniGPT-4 optionally with the image placeholder). */
  readonly text: string;
  /** The image; absent or null for a text-only input. */
  readonly image?: ImageInput | null;
}

/** An editing request or evaluation example: `prompt + target`, optionally with an image. */
export interface Request {
  /** The image; absent or null for a text-only example. */
  readonly image?: ImageInput | null;
  /** The prompt. */
  readonly prompt: string;
  /** The target (a space is prepended by the original's rule, see the module docs). */
  readonly target: string;
}

/** The language model's token sequence of one text: ids, with the vision slots marked. */
export interface TokenLayout {
  /** Ids of the whole sequence; vision slots hold {@linkcode Vllm.imageSlotId}. */
  readonly ids: readonly number[];
  /** Where the `n_v` vision tokens are (`vt_range`); null without an image. */
  readonly vision: TokenRange | null;
}

/** Names of the graph inputs and outputs of the VLLM graphs. */
export const VLLM_INPUTS = {
  inputIds: "input_ids",
  attentionMask: "attention_mask",
  imageIndex: "image_index",
  pixelValues: "pixel_values",
  hidden: "hidden",
  residual: "residual",
  labelIds: "label_ids",
  labelMasks: "label_masks",
  originalLogits: "original_logits",
} as const;

/** A batch of inputs for the VLLM graphs, with where everything is. */
export interface ModelInputs {
  /** The graph feeds (see {@linkcode VLLM_INPUTS}); `image_index`, `pixel_values` with images. */
  readonly feeds: Readonly<Record<string, Tensor>>;
  /** True when the batch has images (then every row has one). */
  readonly hasImages: boolean;
  /** `attention_mask` i64 `[b, T]`. */
  readonly attentionMask: Tensor<"i64">;
  /** `vt_range` of each row (null without an image). */
  readonly vtRange: readonly (TokenRange | null)[];
  /** Number of tokens of each row (before padding). */
  readonly lengths: readonly number[];
  /** The token layout of each row. */
  readonly layouts: readonly TokenLayout[];
}

/** {@linkcode ModelInputs} of `prompt + target` requests, with labels. */
export interface PreparedBatch extends ModelInputs {
  /** Label ids i64 `[b, L]` (padded with the pad id). */
  readonly labelIds: Tensor<"i64">;
  /** Label masks i64 `[b, L]`: 1 where a target token is predicted. */
  readonly labelMasks: Tensor<"i64">;
  /**
   * End (exclusive) of each row's prompt in the sequence: position `promptEnds[i] - 1` is the
   * last prompt token, whose output predicts the first target token.
   */
  readonly promptEnds: readonly number[];
  /** Number of tokens of `prompt` (with BOS) per row, as the original counts them. */
  readonly promptLengths: readonly number[];
  /** The targets after the leading-space rule. */
  readonly targets: readonly string[];
}

/** What the processor needs of a model. */
export interface ProcessorSource {
  /** The model's `model_type`, for error messages. */
  readonly family: string;
  /** Height and width of `pixel_values`. */
  readonly imageSize: number;
  /** The tokenizer (loaded once). */
  tokenizer(): Promise<HfTokenizer>;
  /** The preprocessed pixels of an image path (e.g. a cache in front of the image processor). */
  readonly images: ImageSource;
  /**
   * The token sequence of `text` (with an image when `withImage`), as the original builds it;
   * throws for a text the architecture cannot take.
   */
  layout(tokenizer: HfTokenizer, text: string, withImage: boolean): TokenLayout;
}

/**
 * The padding id: the tokenizer's PAD token, else its EOS token (the original's
 * `set_tokenizer_pad_id`); throws naming the tokenizer when it has neither.
 */
export function padIdOf(tokenizer: HfTokenizer): number {
  const id = tokenizer.pad?.id ?? tokenizer.eos?.id;
  if (id === undefined) {
    throw new Error(`${tokenizer.dir}: the tokenizer has neither a pad_token nor an eos_token`);
  }
  return id;
}

/**
 * The batch of `texts` (each with or without an image; a batch has images on every row or
 * on none, as in the original): token layouts, right padding with the pad id, attention mask,
 * `image_index` and the stacked `pixel_values`.
 */
export async function processInputs(
  src: ProcessorSource,
  texts: readonly TextInput[],
): Promise<ModelInputs> {
  if (texts.length === 0) throw new Error(`${src.family}: no inputs given`);
  const tokenizer = await src.tokenizer();
  const hasImages = imagesOf(src.family, texts);
  const layouts = texts.map((t) => src.layout(tokenizer, t.text, hasImages));
  const pixels = hasImages ? await pixelValuesOf(src, texts.map((t) => t.image!)) : undefined;
  return inputsFromLayouts(src, layouts, padIdOf(tokenizer), pixels);
}

/**
 * The feeds of token `layouts` (see {@linkcode processInputs}): right padding with `padId`;
 * `pixelValues` `[b, 3, H, W]` when the layouts have vision slots.
 */
export function inputsFromLayouts(
  src: ProcessorSource,
  layouts: readonly TokenLayout[],
  padId: number,
  pixelValues?: Tensor<"f32">,
): ModelInputs {
  const b = layouts.length;
  const lengths = layouts.map((l) => l.ids.length);
  const T = Math.max(...lengths);
  const ids = new BigInt64Array(b * T).fill(BigInt(padId));
  const mask = new BigInt64Array(b * T);
  const index = new BigInt64Array(b * T).fill(-1n);
  layouts.forEach((l, r) => {
    l.ids.forEach((id, t) => {
      ids[r * T + t] = BigInt(id);
      mask[r * T + t] = 1n;
    });
    if (l.vision) {
      for (let t = l.vision[0]; t < l.vision[1]; t++) {
        index[r * T + t] = BigInt(t - l.vision[0]);
      }
    }
  });
  const hasImages = layouts.some((l) => l.vision !== null);
  if (
    hasImages !== (pixelValues !== undefined) || layouts.some((l) => !l.vision !== !hasImages)
  ) {
    throw new Error(
      `${src.family}: pixel values must be given exactly when every row has vision tokens`,
    );
  }
  const attentionMask = new Tensor("i64", [b, T], mask);
  const feeds: Record<string, Tensor> = {
    [VLLM_INPUTS.inputIds]: new Tensor("i64", [b, T], ids),
    [VLLM_INPUTS.attentionMask]: attentionMask,
  };
  if (pixelValues) {
    if (pixelValues.shape[0] !== b) {
      throw new Error(`${src.family}: ${pixelValues.shape[0]} images for ${b} rows`);
    }
    feeds[VLLM_INPUTS.imageIndex] = new Tensor("i64", [b, T], index);
    feeds[VLLM_INPUTS.pixelValues] = pixelValues;
  }
  return {
    feeds,
    hasImages,
    attentionMask,
    vtRange: layouts.map((l) => l.vision),
    lengths,
    layouts,
  };
}

/**
 * `prompt + target` requests → inputs, label ids and masks with the original's rules (see
 * the module docs). Throws for an empty target.
 */
export async function prepareRequests(
  src: ProcessorSource,
  requests: readonly Request[],
): Promise<PreparedBatch> {
  if (requests.length === 0) throw new Error(`${src.family}: no requests given`);
  const tokenizer = await src.tokenizer();
  const padId = padIdOf(tokenizer);
  const targets = requests.map((r, i) => {
    if (r.target === "") throw new Error(`${src.family}: request ${i} has an empty target`);
    return withLeadingSpace(r.prompt, r.target);
  });
  const full = requests.map((r, i) => tokenizer.encode(r.prompt + targets[i]));
  const promptLengths = requests.map((r) => tokenizer.encode(r.prompt).length);
  const inputs = await processInputs(
    src,
    requests.map((r, i) => ({ text: r.prompt + targets[i], image: r.image })),
  );
  const labels = labelTensors(full, promptLengths, padId);
  return {
    ...inputs,
    ...labels,
    promptEnds: inputs.lengths.map((len, i) => len - full[i].length + promptLengths[i]),
    promptLengths,
    targets,
  };
}

/**
 * `pixel_values` `[b, 3, H, W]` of `images`: paths go through `src.images` (the directory's
 * image processor behind a cache), all decoded at once; tensors must be `[3, H, W]` or
 * `[1, 3, H, W]` of this model's size. A failure names the first image at fault, in order.
 */
export async function pixelValuesOf(
  src: ProcessorSource,
  images: readonly ImageInput[],
): Promise<Tensor<"f32">> {
  const size = src.imageSize, plane = 3 * size * size;
  const out = new Float32Array(images.length * plane);
  const loaded = await Promise.allSettled(
    images.map((image) => typeof image === "string" ? src.images.loadImage(image) : image),
  );
  for (const [i, image] of images.entries()) {
    const result = loaded[i];
    if (result.status === "rejected") throw result.reason;
    const t = result.value;
    const dims = t.shape.length === 4 ? t.shape.slice(1) : t.shape;
    const ok = t.dtype === "f32" && (t.shape.length === 3 || t.shape[0] === 1) &&
      dims.join() === `3,${size},${size}`;
    if (!ok) {
      throw new Error(
        `${src.family}: image ${
          typeof image === "string" ? image : i
        } must be f32 [3, ${size}, ${size}] pixel values, got ${t.dtype}[${t.shape.join(", ")}]`,
      );
    }
    out.set(t.data as Float32Array, i * plane);
  }
  return new Tensor("f32", [images.length, 3, size, size], out);
}

/** Whether `texts` have images: all or none, else an error naming the family. */
function imagesOf(family: string, texts: readonly TextInput[]): boolean {
  const withImage = texts.map((t) => t.image !== undefined && t.image !== null);
  if (withImage.some((w) => w !== withImage[0])) {
    throw new Error(
      `${family}: a batch must have an image on every row or on none (rows ${
        withImage.map((w, i) => w ? i : -1).filter((i) => i >= 0).join(", ")
      } have one)`,
    );
  }
  return withImage[0];
}

/**
 * Label ids and masks of token lists `full` (`prompt + target` with BOS) whose prompts have
 * `promptLengths` tokens: `roll(ids, -1)`, mask 1 on `[promptLength - 1, n - 1)`, right padding
 * (ids with `padId`, masks with 0), then both sliced from `min(promptLengths) - 1`.
 */
export function labelTensors(
  full: readonly (readonly number[])[],
  promptLengths: readonly number[],
  padId: number,
): { labelIds: Tensor<"i64">; labelMasks: Tensor<"i64"> } {
  const b = full.length;
  if (promptLengths.some((p) => p < 1)) {
    throw new Error("labels: every prompt needs at least one token (the tokenizer adds no BOS)");
  }
  const start = Math.min(...promptLengths) - 1;
  const n = Math.max(...full.map((f) => f.length));
  const L = n - start;
  const ids = new BigInt64Array(b * L).fill(BigInt(padId));
  const masks = new BigInt64Array(b * L);
  full.forEach((tokens, r) => {
    const len = tokens.length;
    for (let j = 0; j < len; j++) {
      const col = j - start;
      if (col < 0) continue;
      ids[r * L + col] = BigInt(tokens[(j + 1) % len]);
      masks[r * L + col] = j >= promptLengths[r] - 1 && j < len - 1 ? 1n : 0n;
    }
  });
  return { labelIds: new Tensor("i64", [b, L], ids), labelMasks: new Tensor("i64", [b, L], masks) };
}

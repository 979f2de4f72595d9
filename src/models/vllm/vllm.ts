/**
 * The interface LiveEdit uses to drive a vision-language model (BLIP-2 OPT, LLaVA-1.5,
 * MiniGPT-4): {@linkcode Vllm}, the shared part of the three, and the host-side preparation of
 * inputs with the authors' rules (`BaseVLLMForEdit` of the LiveEdit release).
 *
 * A VLLM is a vision side that turns `pixel_values` into `n_v` vision tokens in the language
 * model's embedding space, and a {@linkcode CausalDecoder}. Each architecture file says where
 * the vision tokens go in the token sequence ({@linkcode Vllm.layout}); the rest is shared:
 *
 * - host: {@linkcode Vllm.inputs} for texts (and images) gives the graph feeds with `vt_range`
 *   per row; {@linkcode Vllm.prepare} for `prompt + target` requests adds the label ids and
 *   masks (a space is prepended to the target when neither the prompt ends with a space or
 *   newline nor the target starts with one; labels are the tokens of `prompt + target` rolled
 *   by one, masked from the last prompt token to the second-to-last token; right padding;
 *   both sliced from the shortest prompt's last token). Losses read the last `L` positions of
 *   the logits, `L` the length of the labels (`labelLoss`, `logitKLLoss`).
 * - graph pieces: {@linkcode Vllm.declareInputs}, {@linkcode Vllm.embed},
 *   {@linkcode Vllm.begin}, {@linkcode Vllm.layers}, {@linkcode Vllm.resume},
 *   {@linkcode Vllm.continueFrom} and {@linkcode Vllm.head}, for graphs the editor builds
 *   (residuals at layer `l`, differentiated with `grad`);
 * - whole graphs: {@linkcode Vllm.forwardGraph}, {@linkcode Vllm.stageGraph} (contiguous layer
 *   ranges: embeddings + layers `[0, a)`, layers `[a, b)`, …, layers + head),
 *   {@linkcode Vllm.continuationGraph} (from the output of layer `l` plus a residual to logits
 *   and both losses). `VllmRunner` (`runner.ts`) runs them on host tensors and generates.
 *
 * Graph inputs (names in {@linkcode VLLM_INPUTS}): `input_ids` i64 `[b, T]` (text ids; vision
 * slots hold any valid id), `attention_mask` i64 `[b, T]` (1 = token or vision token, 0 =
 * padding), and with images `image_index` i64 `[b, T]` (the vision token a slot takes, -1 for
 * text and padding) and `pixel_values` f32 `[b, 3, H, W]`.
 *
 * Dtypes: every graph input and output is f32 (or int64), whatever the compute dtype
 * ({@linkcode Vllm.computeDtype}, f16 on GPUs for f16 checkpoints): values are cast to the
 * compute dtype where they enter ({@linkcode Vllm.declareInputs}, {@linkcode Vllm.enter}) and
 * back to f32 where they leave ({@linkcode Vllm.leave}), so callers and the editor (which
 * computes in f32) see the same graphs either way. Inside, attention softmax (`attention.ts`)
 * and RMSNorm run in f32; losses are taken on the f32 logits.
 *
 * @module
 */
import { withLeadingSpace } from "../../data/prompts.ts";
import { Graph, type Value } from "../../graph/ir.ts";
import * as op from "../../graph/ops.ts";
import type { ModelDir } from "../../io/model_dir.ts";
import type { HfTokenizer } from "../../io/tokenizer.ts";
import type { ImageProcessor } from "../../io/image.ts";
import { isFloat } from "../../tensor/dtype.ts";
import { Tensor } from "../../tensor/tensor.ts";
import {
  type CausalDecoder,
  checkLayerIndex,
  type DecoderConfig,
  type DecoderState,
  runLayers,
} from "../decoder.ts";
import { labelLoss, logitKLLoss } from "../losses.ts";
import type { ComputeDType } from "../weights.ts";

/** The `model_type`s of the three VLLMs. */
export type VllmFamily = "blip-2" | "llava" | "minigpt4";

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

/** Graph values of the inputs of {@linkcode Vllm.embed}. */
export interface InputValues {
  /** `input_ids` i64 `[b, T]`. */
  readonly inputIds: Value;
  /** `attention_mask` i64 `[b, T]`. */
  readonly attentionMask: Value;
  /** `image_index` i64 `[b, T]`, with images. */
  readonly imageIndex?: Value;
  /** `pixel_values` `[b, 3, H, W]` in the compute dtype, with images. */
  readonly pixelValues?: Value;
}

/** A traced graph and its named outputs, ready for `compileModel(graph, outputs)`. */
export interface VllmGraph {
  /** The graph. */
  readonly graph: Graph;
  /** Outputs by name. */
  readonly outputs: Record<string, Value>;
}

/** Options of the graphs that start from the inputs. */
export interface ImageOption {
  /** Whether the inputs have images (`image_index`, `pixel_values` are inputs then). */
  readonly image: boolean;
}

/** What every architecture file provides to {@linkcode Vllm}. */
export interface VllmParts {
  /** The opened model directory. */
  readonly dir: ModelDir;
  /** The language model. */
  readonly decoder: CausalDecoder;
  /** Number of vision tokens of one image, `n_v`. */
  readonly numImageTokens: number;
  /** Height and width of `pixel_values`. */
  readonly imageSize: number;
  /** The image placeholder string of prompts (LLaVA `<image>`), or null (BLIP-2). */
  readonly imagePlaceholder: string | null;
}

/**
 * A vision-language model cut at its decoder's layer boundaries (see the module docs). The
 * architectures (`blip2_opt.ts`, `llava.ts`, `minigpt4.ts`) extend it with their vision side
 * and token layout; load one with `loadVllm`.
 */
export abstract class Vllm {
  /** The `model_type`. */
  abstract readonly family: VllmFamily;
  /** The opened model directory (closed by {@linkcode Vllm.close}). */
  readonly dir: ModelDir;
  /** The language model. */
  readonly decoder: CausalDecoder;
  /** Number of vision tokens of one image, `n_v`. */
  readonly numImageTokens: number;
  /** Height and width of `pixel_values`. */
  readonly imageSize: number;
  /** The image placeholder of prompts, or null when the architecture has none. */
  readonly imagePlaceholder: string | null;

  /** Wraps the parts an architecture file loaded. */
  protected constructor(parts: VllmParts) {
    this.dir = parts.dir;
    this.decoder = parts.decoder;
    this.numImageTokens = parts.numImageTokens;
    this.imageSize = parts.imageSize;
    this.imagePlaceholder = parts.imagePlaceholder;
  }

  /** The language model's config. */
  get config(): DecoderConfig {
    return this.decoder.config;
  }

  /** Number of decoder layers. */
  get numLayers(): number {
    return this.decoder.config.numLayers;
  }

  /** Dtype of the hidden states and logits that graphs take and return: always f32. */
  get dtype(): "f32" {
    return "f32";
  }

  /** Dtype the graphs compute in (the decoder's; see the module docs). */
  get computeDtype(): ComputeDType {
    return this.decoder.dtype;
  }

  /** A host-facing (f32) value as the graph computes it: cast to {@linkcode Vllm.computeDtype}. */
  enter(x: Value): Value {
    return op.cast(x, this.computeDtype);
  }

  /** Graph outputs as the host sees them: float values cast to f32, others unchanged. */
  leave(outputs: Record<string, Value>): Record<string, Value> {
    return Object.fromEntries(
      Object.entries(outputs).map(([name, v]) => [name, isFloat(v.dtype) ? op.cast(v, "f32") : v]),
    );
  }

  /** The id placed at the vision slots of `input_ids` (its embedding is replaced). */
  abstract get imageSlotId(): number;

  /** The vision tokens `[b, n_v, d]` of `pixelValues` `[b, 3, H, W]`, in graph `g`. */
  abstract imageTokens(g: Graph, pixelValues: Value): Value;

  /**
   * The token sequence of `text` (with an image when `withImage`), as the original builds it;
   * throws for a text the architecture cannot take (e.g. a placeholder without an image).
   */
  abstract layout(tokenizer: HfTokenizer, text: string, withImage: boolean): TokenLayout;

  /** The tokenizer of the model directory (loaded once). */
  tokenizer(): Promise<HfTokenizer> {
    return this.dir.tokenizer();
  }

  /** The image processor of the model directory (loaded once). */
  imageProcessor(): Promise<ImageProcessor> {
    return this.dir.imageProcessor();
  }

  /**
   * The padding id: the tokenizer's PAD token, else its EOS token (the original's
   * `set_tokenizer_pad_id`); throws naming the tokenizer when it has neither.
   */
  padId(tokenizer: HfTokenizer): number {
    const id = tokenizer.pad?.id ?? tokenizer.eos?.id;
    if (id === undefined) {
      throw new Error(`${tokenizer.dir}: the tokenizer has neither a pad_token nor an eos_token`);
    }
    return id;
  }

  /** Closes the model directory's checkpoint. */
  close(): void {
    this.dir.close();
  }

  // -------------------------------------------------------------------------------------------
  // Host: inputs and labels

  /**
   * The batch of `texts` (each with or without an image; a batch has images on every row or
   * on none, as in the original): token layouts, right padding with the pad id, attention mask,
   * `image_index` and the stacked `pixel_values`.
   */
  async inputs(texts: readonly TextInput[]): Promise<ModelInputs> {
    if (texts.length === 0) throw new Error(`${this.family}: no inputs given`);
    const tokenizer = await this.tokenizer();
    const hasImages = imagesOf(this.family, texts);
    const layouts = texts.map((t) => this.layout(tokenizer, t.text, hasImages));
    const pixels = hasImages ? await this.pixelValues(texts.map((t) => t.image!)) : undefined;
    return this.inputsFromLayouts(layouts, this.padId(tokenizer), pixels);
  }

  /**
   * The feeds of token `layouts` (see {@linkcode Vllm.inputs}): right padding with `padId`;
   * `pixelValues` `[b, 3, H, W]` when the layouts have vision slots.
   */
  inputsFromLayouts(
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
        `${this.family}: pixel values must be given exactly when every row has vision tokens`,
      );
    }
    const attentionMask = new Tensor("i64", [b, T], mask);
    const feeds: Record<string, Tensor> = {
      [VLLM_INPUTS.inputIds]: new Tensor("i64", [b, T], ids),
      [VLLM_INPUTS.attentionMask]: attentionMask,
    };
    if (pixelValues) {
      if (pixelValues.shape[0] !== b) {
        throw new Error(`${this.family}: ${pixelValues.shape[0]} images for ${b} rows`);
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
  async prepare(requests: readonly Request[]): Promise<PreparedBatch> {
    if (requests.length === 0) throw new Error(`${this.family}: no requests given`);
    const tokenizer = await this.tokenizer();
    const padId = this.padId(tokenizer);
    const targets = requests.map((r, i) => {
      if (r.target === "") throw new Error(`${this.family}: request ${i} has an empty target`);
      return withLeadingSpace(r.prompt, r.target);
    });
    const full = requests.map((r, i) => tokenizer.encode(r.prompt + targets[i]));
    const promptLengths = requests.map((r) => tokenizer.encode(r.prompt).length);
    const inputs = await this.inputs(
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
   * `pixel_values` `[b, 3, H, W]` of `images`: paths are preprocessed by the directory's image
   * processor; tensors must be `[3, H, W]` or `[1, 3, H, W]` of this model's size.
   */
  async pixelValues(images: readonly ImageInput[]): Promise<Tensor<"f32">> {
    const size = this.imageSize, plane = 3 * size * size;
    const out = new Float32Array(images.length * plane);
    for (const [i, image] of images.entries()) {
      const t = typeof image === "string"
        ? await (await this.imageProcessor()).loadImage(image)
        : image;
      const dims = t.shape.length === 4 ? t.shape.slice(1) : t.shape;
      const ok = t.dtype === "f32" && (t.shape.length === 3 || t.shape[0] === 1) &&
        dims.join() === `3,${size},${size}`;
      if (!ok) {
        throw new Error(
          `${this.family}: image ${
            typeof image === "string" ? image : i
          } must be f32 [3, ${size}, ${size}] pixel values, got ${t.dtype}[${t.shape.join(", ")}]`,
        );
      }
      out.set(t.data as Float32Array, i * plane);
    }
    return new Tensor("f32", [images.length, 3, size, size], out);
  }

  // -------------------------------------------------------------------------------------------
  // Graph pieces

  /**
   * Declares the graph inputs of {@linkcode Vllm.embed} in `g` (see {@linkcode VLLM_INPUTS});
   * `pixel_values` is declared f32 and returned cast to the compute dtype.
   */
  declareInputs(g: Graph, options: ImageOption): InputValues {
    const n = VLLM_INPUTS;
    const ids = g.input(n.inputIds, "i64", ["batch", "seq"]);
    const mask = g.input(n.attentionMask, "i64", ["batch", "seq"]);
    if (!options.image) return { inputIds: ids, attentionMask: mask };
    const s = this.imageSize;
    return {
      inputIds: ids,
      attentionMask: mask,
      imageIndex: g.input(n.imageIndex, "i64", ["batch", "seq"]),
      pixelValues: this.enter(g.input(n.pixelValues, "f32", ["batch", 3, s, s])),
    };
  }

  /**
   * The input embeddings `[b, T, d]`: token embeddings, with the vision tokens of
   * `pixelValues` at the slots where `imageIndex >= 0`.
   */
  embed(inputs: InputValues): Value {
    const g = inputs.inputIds.graph;
    const text = this.decoder.embedTokens(g, inputs.inputIds);
    if (!inputs.pixelValues || !inputs.imageIndex) return text;
    const vision = this.imageTokens(g, inputs.pixelValues); // [b, n_v, d]
    const index = inputs.imageIndex;
    const isVision = op.greaterOrEqual(index, op.scalar(g, "i64", 0));
    const safe = op.where(isVision, index, op.scalar(g, "i64", 0));
    const gathered = op.gatherElements(vision, op.expandLike(op.unsqueeze(safe, [2]), text), 1);
    return op.where(op.unsqueeze(isVision, [2]), gathered, text);
  }

  /** The decoder state before layer 0: {@linkcode Vllm.embed}, then the decoder's `begin`. */
  begin(inputs: InputValues): DecoderState {
    return this.decoder.begin(inputs.inputIds.graph, this.embed(inputs), inputs.attentionMask);
  }

  /** Runs decoder layers `from … to - 1` (a stage). */
  layers(state: DecoderState, from: number, to: number): DecoderState {
    return runLayers(this.decoder, state, from, to);
  }

  /**
   * The state at a layer boundary for hidden states `[b, T, d]` taken there (cast to the
   * compute dtype).
   */
  resume(g: Graph, hidden: Value, attentionMask: Value): DecoderState {
    return this.decoder.resume(g, this.enter(hidden), attentionMask);
  }

  /** Final norm and LM head: logits `[b, T, vocab]` in the compute dtype. */
  head(g: Graph, hidden: Value): Value {
    return this.decoder.head(g, hidden);
  }

  /**
   * Logits `[b, T, vocab]` from `hidden`, taken as the output of layer `layer` (e.g. that output
   * plus a residual): layers `layer + 1 …` and the head. Differentiable in `hidden`; `hidden`
   * is f32 (cast to the compute dtype inside) and so are the logits.
   */
  continueFrom(layer: number, hidden: Value, attentionMask: Value): Value {
    checkLayerIndex(this.config, layer, this.family);
    const g = hidden.graph;
    const state = this.layers(this.resume(g, hidden, attentionMask), layer + 1, this.numLayers);
    return op.cast(this.head(g, state.hidden), "f32");
  }

  // -------------------------------------------------------------------------------------------
  // Whole graphs

  /** Inputs → `inputs_embeds`, `layer_out.<i>` for every layer, and `logits`. */
  forwardGraph(options: ImageOption): VllmGraph {
    const g = new Graph();
    const inputs = this.declareInputs(g, options);
    const embeds = this.embed(inputs);
    let state = this.decoder.begin(g, embeds, inputs.attentionMask);
    const outputs: Record<string, Value> = { inputs_embeds: embeds };
    for (let i = 0; i < this.numLayers; i++) {
      state = this.decoder.layer(i, state);
      outputs[`layer_out.${i}`] = state.hidden;
    }
    outputs.logits = this.head(g, state.hidden);
    return { graph: g, outputs: this.leave(outputs) };
  }

  /**
   * Stage `[from, to)`: from the inputs (`from` = 0: vision side and embeddings) or from
   * `hidden` (the output of layer `from - 1`) and `attention_mask`, through layers
   * `from … to - 1`, to `hidden_out` (the output of layer `to - 1`), and with `head` (default:
   * when `to` is the last layer) also `logits`. Stages `[0, a)`, `[a, b)`, …, `[z, n)` compose
   * to the whole model.
   */
  stageGraph(from: number, to: number, options: ImageOption & { head?: boolean }): VllmGraph {
    const n = this.numLayers;
    if (!(Number.isInteger(from) && Number.isInteger(to) && 0 <= from && from <= to && to <= n)) {
      throw new Error(`${this.family}: stage ${from}..${to} is not a layer range within 0..${n}`);
    }
    const g = new Graph();
    let state: DecoderState;
    if (from === 0) {
      state = this.begin(this.declareInputs(g, options));
    } else {
      const hidden = g.input(VLLM_INPUTS.hidden, this.dtype, ["batch", "seq", this.hiddenSize]);
      const mask = g.input(VLLM_INPUTS.attentionMask, "i64", ["batch", "seq"]);
      state = this.resume(g, hidden, mask);
    }
    state = this.layers(state, from, to);
    const outputs: Record<string, Value> = { hidden_out: state.hidden };
    if (options.head ?? to === n) outputs.logits = this.head(g, state.hidden);
    return { graph: g, outputs: this.leave(outputs) };
  }

  /**
   * From `hidden` (the output of layer `layer`) plus `residual` (both `[b, T, d]`) to `logits`,
   * `label_loss` (on `label_ids`/`label_masks`) and `kl_loss` = KL(p_edited ‖ p_original)
   * against `original_logits` `[b, T, vocab]`; `edited_hidden` is `hidden + residual`.
   */
  continuationGraph(layer: number): VllmGraph {
    const g = new Graph();
    const n = VLLM_INPUTS, d = this.hiddenSize;
    const hidden = g.input(n.hidden, this.dtype, ["batch", "seq", d]);
    const residual = g.input(n.residual, this.dtype, ["batch", "seq", d]);
    const mask = g.input(n.attentionMask, "i64", ["batch", "seq"]);
    const labelIds = g.input(n.labelIds, "i64", ["batch", "labels"]);
    const labelMasks = g.input(n.labelMasks, "i64", ["batch", "labels"]);
    const original = g.input(n.originalLogits, this.dtype, ["batch", "seq", this.config.vocabSize]);
    const edited = op.add(hidden, residual);
    const logits = this.continueFrom(layer, edited, mask);
    return {
      graph: g,
      outputs: {
        edited_hidden: edited,
        logits,
        label_loss: labelLoss(logits, labelIds, labelMasks),
        kl_loss: logitKLLoss(logits, original, labelMasks),
      },
    };
  }

  /** Width `d` of hidden states. */
  get hiddenSize(): number {
    return this.decoder.config.hiddenSize;
  }

  /**
   * Traces the vision side once into a throwaway graph, so that a missing or misshaped weight
   * fails when the model is loaded (naming the checkpoint file and key).
   */
  checkImageWeights(): void {
    const g = new Graph();
    this.imageTokens(g, this.declareInputs(g, { image: true }).pixelValues!);
  }
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

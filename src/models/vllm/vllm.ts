/**
 * The interface LiveEdit uses to drive a vision-language model (BLIP-2 OPT, LLaVA-1.5,
 * MiniGPT-4): {@linkcode Vllm}, the shared part of the three, as graphs. The host-side
 * preparation of inputs (tokens, images, labels) is the processor's (`processor.ts`); `Vllm`
 * offers it as methods ({@linkcode Vllm.inputs}, {@linkcode Vllm.prepare}).
 *
 * A VLLM is a vision side that turns `pixel_values` into `n_v` vision tokens in the language
 * model's embedding space, and a {@linkcode CausalDecoder}. Each architecture file says where
 * the vision tokens go in the token sequence ({@linkcode Vllm.layout}); the rest is shared:
 *
 * - graph pieces: {@linkcode Vllm.declareInputs}, {@linkcode Vllm.embed},
 *   {@linkcode Vllm.begin}, {@linkcode Vllm.layers}, {@linkcode Vllm.resume},
 *   {@linkcode Vllm.continueFrom} and {@linkcode Vllm.head}, for graphs the editor builds
 *   (residuals at layer `l`, differentiated with `grad`);
 * - whole graphs: {@linkcode Vllm.forwardGraph}, {@linkcode Vllm.stageGraph} (contiguous layer
 *   ranges: embeddings + layers `[0, a)`, layers `[a, b)`, …, layers + head),
 *   {@linkcode Vllm.continuationGraph} (from the output of layer `l` plus a residual to logits
 *   and both losses). `VllmRunner` (`runner.ts`) runs them on host tensors and generates.
 *
 * Graph inputs are the processor's feeds (names in `VLLM_INPUTS`), plus `hidden`, `residual`,
 * labels and original logits for the graphs that start at a layer boundary.
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
import { ImageCache, imageCacheCapacity } from "../../data/images.ts";
import { Graph, type Value } from "../../graph/ir.ts";
import * as op from "../../graph/ops.ts";
import type { TracedGraph } from "../../graph/runner.ts";
import type { ModelDir } from "../../io/model_dir.ts";
import type { HfTokenizer } from "../../io/tokenizer.ts";
import type { ImageProcessor } from "../../io/image.ts";
import { isFloat } from "../../tensor/dtype.ts";
import type { Tensor } from "../../tensor/tensor.ts";
import {
  type CausalDecoder,
  checkLayerIndex,
  type DecoderConfig,
  type DecoderState,
  runLayers,
} from "../decoder.ts";
import { labelLoss, logitKLLoss } from "../losses.ts";
import type { ComputeDType } from "../weights.ts";
import {
  type ImageInput,
  inputsFromLayouts,
  type ModelInputs,
  padIdOf,
  pixelValuesOf,
  type PreparedBatch,
  prepareRequests,
  processInputs,
  type Request,
  type TextInput,
  type TokenLayout,
  VLLM_INPUTS,
} from "./processor.ts";

/** The `model_type`s of the three VLLMs. */
export type VllmFamily = "blip-2" | "llava" | "minigpt4";

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

/** A traced VLLM graph and its named outputs (what `RunnerCache` compiles). */
export type VllmGraph = TracedGraph;

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
  /**
   * The preprocessed images of paths, each decoded once while among the last
   * {@linkcode imageCacheCapacity} used (256 MiB of pixels).
   */
  readonly images: ImageCache;

  /** Wraps the parts an architecture file loaded. */
  protected constructor(parts: VllmParts) {
    this.dir = parts.dir;
    this.decoder = parts.decoder;
    this.numImageTokens = parts.numImageTokens;
    this.imageSize = parts.imageSize;
    this.imagePlaceholder = parts.imagePlaceholder;
    this.images = new ImageCache({
      loadImage: async (path) => (await this.imageProcessor()).loadImage(path),
    }, imageCacheCapacity(parts.imageSize));
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

  /** The padding id of `tokenizer` (`padIdOf` of `processor.ts`). */
  padId(tokenizer: HfTokenizer): number {
    return padIdOf(tokenizer);
  }

  /** Closes the model directory's checkpoint. */
  close(): void {
    this.dir.close();
  }

  // -------------------------------------------------------------------------------------------
  // Host: the processor (`processor.ts`)

  /** The feeds of `texts` (`processInputs`: layouts, padding, mask, images). */
  inputs(texts: readonly TextInput[]): Promise<ModelInputs> {
    return processInputs(this, texts);
  }

  /** The feeds of token `layouts` (`inputsFromLayouts`). */
  inputsFromLayouts(
    layouts: readonly TokenLayout[],
    padId: number,
    pixelValues?: Tensor<"f32">,
  ): ModelInputs {
    return inputsFromLayouts(this, layouts, padId, pixelValues);
  }

  /** `prompt + target` requests → inputs, label ids and masks (`prepareRequests`). */
  prepare(requests: readonly Request[]): Promise<PreparedBatch> {
    return prepareRequests(this, requests);
  }

  /** `pixel_values` `[b, 3, H, W]` of `images` (`pixelValuesOf`). */
  pixelValues(images: readonly ImageInput[]): Promise<Tensor<"f32">> {
    return pixelValuesOf(this, images);
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
   * when `to` is the last layer) also `logits`; with `layerOutputs` also `layer_out.<i>` for
   * every layer of the stage and, from the inputs, `inputs_embeds` (the outputs of
   * {@linkcode Vllm.forwardGraph}, stage by stage). Stages `[0, a)`, `[a, b)`, …, `[z, n)`
   * compose to the whole model.
   */
  stageGraph(
    from: number,
    to: number,
    options: ImageOption & { head?: boolean; layerOutputs?: boolean },
  ): VllmGraph {
    const n = this.numLayers;
    if (!(Number.isInteger(from) && Number.isInteger(to) && 0 <= from && from <= to && to <= n)) {
      throw new Error(`${this.family}: stage ${from}..${to} is not a layer range within 0..${n}`);
    }
    const g = new Graph();
    const outputs: Record<string, Value> = {};
    let state: DecoderState;
    if (from === 0) {
      const inputs = this.declareInputs(g, options);
      const embeds = this.embed(inputs);
      if (options.layerOutputs) outputs.inputs_embeds = embeds;
      state = this.decoder.begin(g, embeds, inputs.attentionMask);
    } else {
      const hidden = g.input(VLLM_INPUTS.hidden, this.dtype, ["batch", "seq", this.hiddenSize]);
      const mask = g.input(VLLM_INPUTS.attentionMask, "i64", ["batch", "seq"]);
      state = this.resume(g, hidden, mask);
    }
    for (let i = from; i < to; i++) {
      state = this.decoder.layer(i, state);
      if (options.layerOutputs) outputs[`layer_out.${i}`] = state.hidden;
    }
    outputs.hidden_out = state.hidden;
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

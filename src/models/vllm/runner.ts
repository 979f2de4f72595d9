/**
 * Running a {@linkcode Vllm}'s graphs on host tensors: {@linkcode VllmRunner} compiles each
 * graph once (into the graph cache), keeps its session, and offers what the editor and the
 * evaluation need — the forward pass, hidden states at the output of a layer, the logits (and
 * losses) from a layer's output plus a residual, stages, and greedy generation with a KV cache
 * (`buildDecodeStep`).
 *
 * @example
 * ```ts ignore
 * const vllm = await loadVllm("models/llava-1.5-7b-hf");
 * const runner = new VllmRunner(vllm);
 * const { text } = await runner.generate({ text: "What is in the image?", image: "cat.jpg" });
 * await runner.close();
 * vllm.close();
 * ```
 *
 * @module
 */
import { RunnerCache } from "../../graph/runner.ts";
import { buildDecodeStep, DECODE_NAMES, type ResidualHook } from "../decoder.ts";
import type { DeviceWorker } from "../../runtime/device_worker.ts";
import { f32 } from "../../runtime/outputs.ts";
import type { RunStats } from "../../runtime/runner.ts";
import { Tensor } from "../../tensor/tensor.ts";
import { type ModelInputs, type PreparedBatch, type TextInput, VLLM_INPUTS } from "./processor.ts";
import type { Vllm, VllmGraph } from "./vllm.ts";

/** Options of {@linkcode VllmRunner}. */
export interface RunnerOptions {
  /** Device of the sessions (default `"cpu"`); ignored when `worker` is given. */
  readonly device?: string;
  /**
   * Run the sessions in this device's Worker instead of on the calling thread, so that runs on
   * different devices overlap (`session.run` blocks the thread it runs on).
   */
  readonly worker?: DeviceWorker;
  /** Graph cache directory (default: the user's graph cache, see `graphCacheRoot`). */
  readonly cacheDir?: string;
}

/** Options of {@linkcode VllmRunner.generate}. */
export interface GenerateOptions {
  /** Most tokens to generate (default 20). */
  readonly maxNewTokens?: number;
  /**
   * A residual added at the output of one layer in every step, fixed for the generation (e.g.
   * the experts an editor chose from the prompt); see `ResidualHook` of `decoder.ts`.
   */
  readonly hook?: ResidualHook;
}

/** The result of {@linkcode VllmRunner.generate}. */
export interface Generation {
  /** The generated ids (the EOS token not included). */
  readonly ids: readonly number[];
  /** Their text, special tokens left out. */
  readonly text: string;
  /** Why generation stopped. */
  readonly stopped: "eos" | "length";
}

/** The forward pass's tensors. */
export interface ForwardResult {
  /** The input embeddings `[b, T, d]`. */
  readonly inputsEmbeds: Tensor<"f32">;
  /** The output of every decoder layer `[b, T, d]`, by index. */
  readonly layerOut: readonly Tensor<"f32">[];
  /** Logits `[b, T, vocab]`. */
  readonly logits: Tensor<"f32">;
}

/** Runs the graphs of one {@linkcode Vllm}; {@linkcode VllmRunner.close} frees the sessions. */
export class VllmRunner {
  /** The model. */
  readonly vllm: Vllm;
  readonly #runners: RunnerCache;

  /** A runner for `vllm` (sessions are created on first use). */
  constructor(vllm: Vllm, options: RunnerOptions = {}) {
    this.vllm = vllm;
    this.#runners = new RunnerCache(options);
  }

  /** The runs of every graph of this runner (count and fed bytes). */
  get stats(): RunStats {
    return this.#runners.stats;
  }

  /**
   * Runs the graph that `build` traces (compiled and loaded once per `key`) on `feeds`; returns
   * every output of the graph. Feeds the compiled model does not take (inputs its outputs do not
   * need) are left out; a missing one is an error naming the session and input.
   */
  run(
    key: string,
    build: () => VllmGraph,
    feeds: Readonly<Record<string, Tensor>>,
  ): Promise<Record<string, Tensor>> {
    return this.#runners.run(key, build, feeds);
  }

  /** Input embeddings, every layer's output and the logits of `inputs`. */
  async forward(inputs: ModelInputs): Promise<ForwardResult> {
    const image = inputs.hasImages;
    const out = await this.run(
      `forward:${image}`,
      () => this.vllm.forwardGraph({ image }),
      inputs.feeds,
    );
    return {
      inputsEmbeds: f32(out, "inputs_embeds"),
      layerOut: Array.from({ length: this.vllm.numLayers }, (_, i) => f32(out, `layer_out.${i}`)),
      logits: f32(out, "logits"),
    };
  }

  /** The hidden states `[b, T, d]` at the output of decoder layer `layer`. */
  async hiddenAt(inputs: ModelInputs, layer: number): Promise<Tensor<"f32">> {
    const image = inputs.hasImages;
    const out = await this.run(
      `hidden:${layer}:${image}`,
      () => this.vllm.stageGraph(0, layer + 1, { image, head: false }),
      inputs.feeds,
    );
    return f32(out, "hidden_out");
  }

  /**
   * Stage `[from, to)` (see `Vllm.stageGraph`): from `inputs` when `from` is 0, else from
   * `hidden` (the output of layer `from - 1`); returns `hidden` and, on the last stage, `logits`.
   */
  async stage(
    from: number,
    to: number,
    inputs: ModelInputs,
    hidden?: Tensor,
  ): Promise<{ hidden: Tensor<"f32">; logits?: Tensor<"f32"> }> {
    const image = inputs.hasImages;
    const feeds = from === 0 ? inputs.feeds : {
      [VLLM_INPUTS.hidden]: required(hidden, `stage ${from}..${to} needs the hidden states`),
      [VLLM_INPUTS.attentionMask]: inputs.attentionMask,
    };
    const out = await this.run(
      `stage:${from}:${to}:${from === 0 && image}`,
      () => this.vllm.stageGraph(from, to, { image }),
      feeds,
    );
    return { hidden: f32(out, "hidden_out"), logits: out.logits && f32(out, "logits") };
  }

  /**
   * Logits `[b, T, vocab]` from `hidden`, the output of layer `layer`, plus `residual` (both
   * `[b, T, d]`; `residual` defaults to zeros), through the remaining layers and the head.
   */
  async logitsFrom(
    layer: number,
    hidden: Tensor,
    attentionMask: Tensor,
    residual?: Tensor,
  ): Promise<Tensor<"f32">> {
    const edited = residual ? addF32(hidden, residual) : hidden;
    const n = this.vllm.numLayers;
    const out = await this.run(
      `from:${layer}`,
      () => this.vllm.stageGraph(layer + 1, n, { image: false, head: true }),
      { [VLLM_INPUTS.hidden]: edited, [VLLM_INPUTS.attentionMask]: attentionMask },
    );
    return f32(out, "logits");
  }

  /**
   * From `hidden` (output of layer `layer`) plus `residual`: the logits, the label loss on
   * `batch`'s labels and KL(p_edited ‖ p_original) against `originalLogits`.
   */
  async losses(
    layer: number,
    batch: PreparedBatch,
    hidden: Tensor,
    residual: Tensor,
    originalLogits: Tensor,
  ): Promise<{ logits: Tensor<"f32">; labelLoss: number; klLoss: number }> {
    const n = VLLM_INPUTS;
    const out = await this.run(`continue:${layer}`, () => this.vllm.continuationGraph(layer), {
      [n.hidden]: hidden,
      [n.residual]: residual,
      [n.attentionMask]: batch.attentionMask,
      [n.labelIds]: batch.labelIds,
      [n.labelMasks]: batch.labelMasks,
      [n.originalLogits]: originalLogits,
    });
    return {
      logits: f32(out, "logits"),
      labelLoss: f32(out, "label_loss").data[0],
      klLoss: f32(out, "kl_loss").data[0],
    };
  }

  /**
   * Greedy decoding for one text and (optionally) its image with a KV cache: the prompt's
   * embeddings fill the cache in one step, then one token per step, until the tokenizer's EOS
   * or `maxNewTokens` (see {@linkcode VllmRunner.generateFrom}).
   */
  async generate(input: TextInput, options: GenerateOptions = {}): Promise<Generation> {
    return await this.generateFrom(await this.vllm.inputs([input]), options);
  }

  /**
   * The greedy decoder: {@linkcode VllmRunner.generate} for the prepared inputs of one prompt
   * (a batch of one row). With `options.hook`, every step (the prompt's included) adds the
   * hook's residual at the output of its layer, so the cache holds the edited keys and values
   * and the cost stays one session run per token.
   */
  async generateFrom(inputs: ModelInputs, options: GenerateOptions = {}): Promise<Generation> {
    const max = options.maxNewTokens ?? 20;
    if (!Number.isInteger(max) || max < 1) {
      throw new Error(`generate: maxNewTokens must be an integer >= 1, got ${max}`);
    }
    if (inputs.lengths.length !== 1) {
      throw new Error(`generate: one prompt at a time, got a batch of ${inputs.lengths.length}`);
    }
    const vllm = this.vllm, hook = options.hook;
    const tokenizer = await vllm.tokenizer();
    const image = inputs.hasImages;
    const embeds = f32(
      await this.run(`embed:${image}`, () => {
        const { graph, outputs } = vllm.forwardGraph({ image });
        return { graph, outputs: { inputs_embeds: outputs.inputs_embeds } };
      }, inputs.feeds),
      "inputs_embeds",
    );
    const c = vllm.config, n = DECODE_NAMES;
    const step = (input: "inputs_embeds" | "input_ids", feeds: Record<string, Tensor>) =>
      this.run(
        `decode:${input}${hook ? `:${hook.key}` : ""}`,
        () => buildDecodeStep(vllm.decoder, { input, hook }),
        { ...hook?.feeds, ...feeds },
      );
    const past: Record<string, Tensor> = {};
    for (let i = 0; i < c.numLayers; i++) {
      const empty = new Tensor("f32", [1, c.numKvHeads, 0, c.headDim], new Float32Array(0));
      past[n.pastKey(i)] = past[n.pastValue(i)] = empty;
    }
    let length = inputs.lengths[0];
    let out = await step("inputs_embeds", {
      [n.inputsEmbeds]: embeds,
      [n.attentionMask]: onesI64(length),
      ...past,
    });
    const ids: number[] = [];
    const eos = tokenizer.eos?.id;
    const done = (stopped: Generation["stopped"]): Generation => ({
      ids,
      text: tokenizer.decode(ids, { skipSpecialTokens: true }),
      stopped,
    });
    for (;;) {
      const logits = f32(out, n.logits), [, q, v] = logits.shape;
      const next = argmax(logits.data, (q - 1) * v, v);
      if (next === eos) return done("eos");
      ids.push(next);
      if (ids.length >= max) return done("length");
      const cache: Record<string, Tensor> = {};
      for (let i = 0; i < c.numLayers; i++) {
        cache[n.pastKey(i)] = out[n.presentKey(i)];
        cache[n.pastValue(i)] = out[n.presentValue(i)];
      }
      length += 1;
      out = await step("input_ids", {
        [n.inputIds]: new Tensor("i64", [1, 1], BigInt64Array.of(BigInt(next))),
        [n.attentionMask]: onesI64(length),
        ...cache,
      });
    }
  }

  /** Releases every session. */
  close(): Promise<void> {
    return this.#runners.close();
  }
}

function required<T>(x: T | undefined, what: string): T {
  if (x === undefined) throw new Error(what);
  return x;
}

function onesI64(length: number): Tensor<"i64"> {
  return new Tensor("i64", [1, length], new BigInt64Array(length).fill(1n));
}

/** `a + b` for two f32 tensors of one shape. */
function addF32(a: Tensor, b: Tensor): Tensor<"f32"> {
  if (a.dtype !== "f32" || b.dtype !== "f32" || a.shape.join() !== b.shape.join()) {
    throw new Error(
      `residual: expected two f32 tensors of one shape, got ${a.dtype}[${a.shape}] and ${b.dtype}[${b.shape}]`,
    );
  }
  const x = a.data as Float32Array, y = b.data as Float32Array;
  return new Tensor("f32", a.shape, x.map((v, i) => v + y[i]));
}

/**
 * Index of the largest of `data[offset .. offset + n)` (the first one on ties): the greedy
 * choice, and the one argmax of the code base for logits.
 *
 * @example
 * ```ts
 * import { argmax } from "./runner.ts";
 * if (argmax(Float32Array.of(9, 1, 5, 7), 1, 3) !== 2) throw new Error("argmax");
 * ```
 */
export function argmax(data: Float32Array, offset = 0, n: number = data.length - offset): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (data[offset + i] > data[offset + best]) best = i;
  return best;
}

/**
 * Running a {@linkcode Vllm}'s graphs on host tensors: {@linkcode VllmRunner} compiles each
 * graph once (into the graph cache), keeps its session, and offers what the editor and the
 * evaluation need — the forward pass, hidden states at the output of a layer, the logits (and
 * losses) from a layer's output plus a residual, stages, and greedy generation with a KV cache
 * (`buildDecodeStep`).
 *
 * A runner is placed as one stage (every layer on one device, in-thread or in a device Worker)
 * or as contiguous stages on several devices ({@linkcode StagePlacement}: the vision side and
 * the embeddings with the first layers on the first, …, the last layers with the final norm and
 * the head on the last). Every call then runs stage by stage: each stage is a compiled graph in
 * its own device's Worker, and the hidden states cross from one stage to the next as buffers
 * handed over to the next Worker (`transferInputs`), not copied; greedy generation keeps the KV
 * cache of each stage's layers with that stage, and a residual hook runs on the stage holding
 * its layer. The stages compose to the whole model, so the results are those of one device.
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
import { RunStats } from "../../runtime/runner.ts";
import { Tensor } from "../../tensor/tensor.ts";
import { type ModelInputs, type PreparedBatch, type TextInput, VLLM_INPUTS } from "./processor.ts";
import type { Vllm, VllmGraph } from "./vllm.ts";

/** One stage of a placed runner: decoder layers `[from, to)` on one device. */
export interface StagePlacement {
  /** First layer of the stage (0 for the first stage, which also runs the vision side). */
  readonly from: number;
  /** One past the stage's last layer (the last stage ends at the last layer, with the head). */
  readonly to: number;
  /** Device of the stage's in-thread sessions (default `"cpu"`); ignored when `worker` is given. */
  readonly device?: string;
  /** Run the stage's sessions in this device's Worker. */
  readonly worker?: DeviceWorker;
}

/** Options of {@linkcode VllmRunner}. */
export interface RunnerOptions {
  /** Device of the sessions (default `"cpu"`); ignored when `worker` or `stages` is given. */
  readonly device?: string;
  /**
   * Run the sessions in this device's Worker instead of on the calling thread, so that runs on
   * different devices overlap (`session.run` blocks the thread it runs on).
   */
  readonly worker?: DeviceWorker;
  /**
   * The stages, contiguous from layer 0 to the last layer; default one stage placed by
   * `device` / `worker`.
   */
  readonly stages?: readonly StagePlacement[];
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

/** A placed stage: its layers, device name and sessions. */
interface Stage {
  readonly from: number;
  readonly to: number;
  readonly device: string;
  readonly runners: RunnerCache;
}

/** What {@linkcode VllmRunner}'s walk through the stages returns. */
interface Through {
  /** The hidden states at the end of the range. */
  readonly hidden: Tensor<"f32">;
  /** The logits, with `head`. */
  readonly logits?: Tensor<"f32">;
  /** Every output of every stage run (`layer_out.<i>`, `inputs_embeds`, ...). */
  readonly outputs: Readonly<Record<string, Tensor>>;
}

/** Runs the graphs of one {@linkcode Vllm}; {@linkcode VllmRunner.close} frees the sessions. */
export class VllmRunner {
  /** The model. */
  readonly vllm: Vllm;
  /** The runs of every graph of this runner, over all stages (count and fed bytes). */
  readonly stats: RunStats = new RunStats();
  /** The graph cache directory of its sessions (undefined: the user's graph cache). */
  readonly cacheDir?: string;
  readonly #stages: readonly Stage[];

  /** A runner for `vllm` (sessions are created on first use). */
  constructor(vllm: Vllm, options: RunnerOptions = {}) {
    this.vllm = vllm;
    this.cacheDir = options.cacheDir;
    const n = vllm.numLayers;
    const placed = options.stages ??
      [{ from: 0, to: n, device: options.device, worker: options.worker }];
    const bounds = placed.map((s) => `${s.from}..${s.to}`).join(", ");
    const ok = placed.length > 0 &&
      placed.every((s, k) =>
        s.from === (k === 0 ? 0 : placed[k - 1].to) && s.from < s.to &&
        (k < placed.length - 1 || s.to === n)
      );
    if (!ok) {
      throw new Error(
        `VllmRunner: stages ${bounds || "(none)"} do not cover the ${n} layers of ` +
          `${vllm.family} in order, each at least one layer`,
      );
    }
    this.#stages = placed.map((s) => ({
      from: s.from,
      to: s.to,
      device: s.worker?.device.name ?? s.device ?? "cpu",
      runners: new RunnerCache({
        device: s.device,
        worker: s.worker,
        cacheDir: options.cacheDir,
        stats: this.stats,
      }),
    }));
  }

  /** The stages: layers `[from, to)` and device of each, in order. */
  get stages(): readonly { readonly from: number; readonly to: number; readonly device: string }[] {
    return this.#stages.map(({ from, to, device }) => ({ from, to, device }));
  }

  /** Index of the stage that holds decoder layer `layer` (the last stage for `numLayers`). */
  stageOf(layer: number): number {
    const k = this.#stages.findIndex((s) => s.from <= layer && layer < s.to);
    return k >= 0 ? k : this.#stages.length - 1;
  }

  /**
   * Runs the graph that `build` traces (compiled and loaded once per `key`) on `feeds`, on stage
   * `stage` (default the first); returns every output of the graph. Feeds the compiled model
   * does not take (inputs its outputs do not need) are left out; a missing one is an error
   * naming the session and input.
   */
  run(
    key: string,
    build: () => VllmGraph,
    feeds: Readonly<Record<string, Tensor>>,
    stage = 0,
  ): Promise<Record<string, Tensor>> {
    const s = this.#stages[stage];
    if (s === undefined) throw new Error(`VllmRunner: no stage ${stage}`);
    return s.runners.run(key, build, feeds);
  }

  /**
   * Compiles and loads the graph of `key` (see {@linkcode VllmRunner.run}) on stage `stage`
   * now, so that its first run does not pay for it.
   */
  async load(key: string, build: () => VllmGraph, stage = 0): Promise<void> {
    const s = this.#stages[stage];
    if (s === undefined) throw new Error(`VllmRunner: no stage ${stage}`);
    await s.runners.get(key, build);
  }

  /**
   * Compiles and loads now the sessions that layers `[from, to)` run on (as `hiddenAt`,
   * `stage` and `logitsFrom` do): with or without an image on the first layers, with the head
   * when `head`. Their first calls then do not pay for it.
   */
  async preload(
    from: number,
    to: number,
    options: { image: boolean; head: boolean },
  ): Promise<void> {
    for (const [k, key, build] of this.#stageGraphs(from, to, options)) {
      await this.#stages[k].runners.get(key, build);
    }
  }

  /** Input embeddings, every layer's output and the logits of `inputs`. */
  async forward(inputs: ModelInputs): Promise<ForwardResult> {
    const out = await this.#through(0, this.vllm.numLayers, inputs, {
      head: true,
      layerOutputs: true,
    });
    return {
      inputsEmbeds: f32(out.outputs, "inputs_embeds"),
      layerOut: Array.from(
        { length: this.vllm.numLayers },
        (_, i) => f32(out.outputs, `layer_out.${i}`),
      ),
      logits: out.logits!,
    };
  }

  /** The hidden states `[b, T, d]` at the output of decoder layer `layer`. */
  async hiddenAt(inputs: ModelInputs, layer: number): Promise<Tensor<"f32">> {
    return (await this.#through(0, layer + 1, inputs, { head: false })).hidden;
  }

  /**
   * Layers `[from, to)` (see `Vllm.stageGraph`) through the placed stages: from `inputs` when
   * `from` is 0, else from `hidden` (the output of layer `from - 1`); returns `hidden` and,
   * when `to` is the last layer, `logits`.
   */
  async stage(
    from: number,
    to: number,
    inputs: ModelInputs,
    hidden?: Tensor,
  ): Promise<{ hidden: Tensor<"f32">; logits?: Tensor<"f32"> }> {
    const start = from === 0 ? inputs : {
      hidden: required(hidden, `stage ${from}..${to} needs the hidden states`),
      attentionMask: inputs.attentionMask,
    };
    const out = await this.#through(from, to, start, { head: to === this.vllm.numLayers });
    return { hidden: out.hidden, logits: out.logits };
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
    const start = { hidden: edited, attentionMask };
    return (await this.#through(layer + 1, this.vllm.numLayers, start, { head: true })).logits!;
  }

  /**
   * From `hidden` (output of layer `layer`) plus `residual`: the logits, the label loss on
   * `batch`'s labels and KL(p_edited ‖ p_original) against `originalLogits`. One stage only
   * (the loss graph holds every remaining layer).
   */
  async losses(
    layer: number,
    batch: PreparedBatch,
    hidden: Tensor,
    residual: Tensor,
    originalLogits: Tensor,
  ): Promise<{ logits: Tensor<"f32">; labelLoss: number; klLoss: number }> {
    if (this.#stages.length !== 1) {
      throw new Error(
        `VllmRunner.losses: the runner is placed on ${this.#stages.length} stages; use ` +
          "logitsFrom and compute the losses from the logits",
      );
    }
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
   * and the cost stays one session run per token and stage.
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
    const cache: Record<string, Tensor> = {};
    const empty = () => new Tensor("f32", [1, c.numKvHeads, 0, c.headDim], new Float32Array(0));
    for (let i = 0; i < c.numLayers; i++) {
      cache[n.pastKey(i)] = empty(); // one buffer each: they are handed over to the Workers
      cache[n.pastValue(i)] = empty();
    }
    /** One decode step through every stage; the grown cache replaces `cache`'s entries. */
    const step = async (input: "inputs_embeds" | "input_ids", first: Tensor, length: number) => {
      let x: Record<string, Tensor> = {
        [input === "inputs_embeds" ? n.inputsEmbeds : n.inputIds]: first,
      };
      let out: Record<string, Tensor> = {};
      for (const s of this.#stages) {
        const kind = s.from === 0 ? input : "hidden";
        const here = hook && s.from <= hook.layer && hook.layer < s.to ? hook : undefined;
        const own: string[] = [];
        for (let i = s.from; i < s.to; i++) own.push(n.pastKey(i), n.pastValue(i));
        out = await s.runners.run(
          `decode:${kind}:${s.from}:${s.to}${here ? `:${here.key}` : ""}`,
          () => buildDecodeStep(vllm.decoder, { input: kind, hook: here, layers: [s.from, s.to] }),
          { ...here?.feeds, ...x, [n.attentionMask]: onesI64(length), ...cache },
          undefined,
          { transferInputs: s.from === 0 ? own : [...own, n.hidden] },
        );
        for (let i = s.from; i < s.to; i++) {
          cache[n.pastKey(i)] = out[n.presentKey(i)];
          cache[n.pastValue(i)] = out[n.presentValue(i)];
        }
        x = { [n.hidden]: out[n.hiddenOut] };
      }
      return f32(out, n.logits);
    };
    let length = inputs.lengths[0];
    let logits = await step("inputs_embeds", embeds, length);
    const ids: number[] = [];
    const eos = tokenizer.eos?.id;
    const done = (stopped: Generation["stopped"]): Generation => ({
      ids,
      text: tokenizer.decode(ids, { skipSpecialTokens: true }),
      stopped,
    });
    for (;;) {
      const [, q, v] = logits.shape;
      const next = argmax(logits.data, (q - 1) * v, v);
      if (next === eos) return done("eos");
      ids.push(next);
      if (ids.length >= max) return done("length");
      length += 1;
      logits = await step(
        "input_ids",
        new Tensor("i64", [1, 1], BigInt64Array.of(BigInt(next))),
        length,
      );
    }
  }

  /** Releases every session of every stage. */
  async close(): Promise<void> {
    for (const s of this.#stages) await s.runners.close();
  }

  /**
   * Layers `[from, to)` stage by stage: from the model inputs when `from` is 0, else from the
   * hidden states (the output of layer `from - 1`) and attention mask of `start`; with `head`,
   * the logits at the end. Hidden states made here are handed over to the next stage's Worker;
   * the caller's are copied.
   */
  async #through(
    from: number,
    to: number,
    start: ModelInputs | { readonly hidden: Tensor; readonly attentionMask: Tensor },
    options: { head: boolean; layerOutputs?: boolean },
  ): Promise<Through> {
    const n = this.vllm.numLayers;
    if (!(Number.isInteger(from) && Number.isInteger(to) && 0 <= from && from <= to && to <= n)) {
      throw new Error(`${this.vllm.family}: layers ${from}..${to} are not a range within 0..${n}`);
    }
    const inputs = "feeds" in start ? start : undefined;
    if ((from === 0) !== (inputs !== undefined)) {
      throw new Error(
        `layers ${from}..${to} start from ${from === 0 ? "the inputs" : "hidden states"}`,
      );
    }
    const image = inputs?.hasImages ?? false;
    const graphs = this.#stageGraphs(from, to, { ...options, image });
    let x = "hidden" in start ? start.hidden : undefined, owned = false;
    const outputs: Record<string, Tensor> = {};
    let logits: Tensor<"f32"> | undefined;
    for (const [k, key, build] of graphs) {
      const s = this.#stages[k];
      const head = options.head && k === graphs[graphs.length - 1][0];
      const feeds = Math.max(from, s.from) === 0 ? inputs!.feeds : {
        [VLLM_INPUTS.hidden]: x!,
        [VLLM_INPUTS.attentionMask]: start.attentionMask,
      };
      const out = await s.runners.run(key, build, feeds, undefined, {
        transferInputs: owned ? [VLLM_INPUTS.hidden] : false,
      });
      Object.assign(outputs, out);
      x = f32(out, "hidden_out");
      owned = true;
      if (head) logits = f32(out, "logits");
    }
    return { hidden: x as Tensor<"f32">, logits, outputs };
  }

  /**
   * The stages that layers `[from, to)` run on, in order, each with the key and graph of its
   * part: an image on the first layers when `image`, the head on the last stage when `head`.
   */
  #stageGraphs(from: number, to: number, o: StageFlags): [number, string, () => VllmGraph][] {
    const out: [number, string, () => VllmGraph][] = [];
    const last = this.stageOf(Math.max(from, to - 1));
    for (let k = this.stageOf(from); k <= last; k++) {
      const s = this.#stages[k], a = Math.max(from, s.from), b = k === last ? to : s.to;
      const { image } = o, head = o.head && k === last, layerOutputs = o.layerOutputs ?? false;
      const key = `stage:${a}:${b}:${a === 0 && image}:${head}:${layerOutputs}`;
      out.push([k, key, () => this.vllm.stageGraph(a, b, { image, head, layerOutputs })]);
    }
    return out;
  }
}

/** Which variant of the stages' graphs (see `#stageGraphs`). */
type StageFlags = { readonly image: boolean; readonly head: boolean; layerOutputs?: boolean };

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

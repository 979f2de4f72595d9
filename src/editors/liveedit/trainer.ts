/**
 * Training LiveEdit on a frozen VLLM (spec §4) as an {@linkcode EditorTrainer}.
 *
 * - {@linkcode LiveEditTrainer.prepare} runs the frozen backbone on every example of a batch —
 *   the request (`rel`), its text and image rephrases (`gen_text`, `gen_image`) and its image
 *   locality example (`loc`) — up to and including layer `l_e`, and keeps the hidden states,
 *   the label ids / masks, the attention masks, the four token ranges of every sequence and
 *   the unedited model's logits of the locality examples at their last `L` (label) positions.
 *   A pure function of the batch: a background producer may run it anywhere, ahead of time.
 * - {@linkcode LiveEditTrainer.step} runs ONE compiled graph (`buildStepGraph`, dynamic dims
 *   for the batch and every length, compiled on the first step and reused): experts of the
 *   requests, the residual of every example under its expert mask, the decoder continued at
 *   layer `l_e + 1` from `H + residual` (as inference runs it) to the per-sample mean token
 *   cross-entropy (`rel`, `gen_text`, `gen_image`) and KL(p_edited ‖ p_original) (`loc`), the
 *   soft routing loss (`soft`) and the two hard routing losses (`hard_neib`, `hard_prot`); the
 *   total and the gradients of every editor parameter; then PyTorch's Adam at the given lr.
 *   With the config's `train.editLayerTwice` the decoder continues from layer `l_e` applied
 *   again to `H`, plus the residual, and the pre-edit locality logits are those of layer `l_e`
 *   applied twice, as the authors' released training computes them (spec §4, "Known flaw"). A
 *   NaN or infinite loss part or gradient throws, naming the step and the part, before any
 *   weight changes.
 * - Masks and pairs of step `t` (1-based, as Adam counts) come from an {@linkcode Rng} seeded
 *   by `(seed, t)` ({@linkcode stepSampling}), so they depend on the trainer state only through
 *   Adam's step count: restoring {@linkcode LiveEditTrainer.state} into a trainer with the same
 *   seed resumes with exactly the losses of an uninterrupted run.
 * - Data parallel (`replicas`): the masks and pairs are drawn for the whole batch, then every
 *   replica runs the step graph on its slice of the samples (`stepFeeds` with `rows`) against
 *   every expert and pair of the batch, and the host adds the slices' losses and gradients up,
 *   weighted by slice size, in replica order (`src/train/data_parallel.ts`) before one Adam step.
 *
 * @module
 */
import type {
  EditorTrainer,
  PreparedTrainBatch,
  StepLosses,
  TrainerState,
} from "../../train/trainer.ts";
import type { EditSample, Example } from "../../data/sample.ts";
import type { Value } from "../../graph/ir.ts";
import type { Vllm, VllmGraph } from "../../models/vllm/vllm.ts";
import type { VllmRunner } from "../../models/vllm/runner.ts";
import { f32 } from "../../runtime/outputs.ts";
import { toNumbers } from "../../tensor/elements.ts";
import { Rng } from "../../tensor/rng.ts";
import { Tensor } from "../../tensor/tensor.ts";
import { Adam } from "../../train/adam.ts";
import { combineReplicas, replicaSlices } from "../../train/data_parallel.ts";
import {
  checkBackbone,
  continuationInputNames,
  continuationLoss,
  lastPositionsHost,
  layerReps,
  originalLogits,
  requestParts,
} from "./backbone.ts";
import type { LiveEditConfig } from "./config.ts";
import { buildTrainingGraph } from "./losses.ts";
import { runStagedStep, stageOutLoss } from "./stage_step.ts";
import { RunnerCache } from "../../graph/runner.ts";
import type { Placement } from "../../runtime/runner.ts";
import type { RowSlice } from "./train_batch.ts";
import {
  type PreparedInfo,
  preparedInfo,
  stepFeeds,
  type StepSampling,
  stepSampling,
  TRAIN_GROUPS,
} from "./step_feeds.ts";
import { checkParams, type EditorParams, initParams, paramSpecs } from "./params.ts";
import type { Range } from "./tokens.ts";

/** The example of `sample` in group `group` (see {@linkcode TRAIN_GROUPS}). */
function groupExample(sample: EditSample, group: string): Example {
  switch (group) {
    case "rel":
      return sample.request;
    case "gen_text":
      return sample.generality.text_rephrase;
    case "gen_image":
      return sample.generality.image_rephrase;
    case "loc":
      return sample.locality.image_loc;
  }
  throw new Error(`LiveEdit training: unknown group '${group}'`);
}

/** The loss parts a step reports (besides the total), in the order they are checked. */
export const LOSS_PARTS: readonly string[] = [
  ...TRAIN_GROUPS.map((g) => g.name),
  "soft",
  "hard_neib",
  "hard_prot",
];

/** The step graph's output of each loss part. */
const PART_OUTPUT: Readonly<Record<string, string>> = {
  ...Object.fromEntries(TRAIN_GROUPS.map((g) => [g.name, `loss/${g.name}`])),
  soft: "soft/loss",
  hard_neib: "hard_neib/loss",
  hard_prot: "hard_prot/loss",
};

/** Options of {@linkcode buildStepGraph}. */
export interface StepGraphOptions {
  /** Also output each group's logits as `logits/<group>` (for checks; large). */
  readonly logits?: boolean;
  /**
   * End the graph's decoder layers here (default: the last layer, then the losses): later
   * stages continue from `<group>/stage_out` (see `stage_step.ts`).
   */
  readonly end?: number;
}

/**
 * The training step graph of `config`'s editor on `vllm`: outputs `total_loss`, the loss parts
 * (`loss/<group>`, `soft/loss`, `hard_neib/loss`, `hard_prot/loss`) and `grad/<param>` for
 * every editor parameter. Inputs: the parameters, {@linkcode stepFeeds}. With `options.end`
 * before the last layer it is the editor's part of a step through stages (`stageOutLoss`:
 * `<group>/stage_out` outputs, `<group>/stage_grad` inputs, and `loss/<group>` and
 * `total_loss` stand for the terms of the backward objective).
 */
export function buildStepGraph(
  vllm: Vllm,
  config: LiveEditConfig,
  options: StepGraphOptions = {},
): VllmGraph {
  const logits: Record<string, Value> = {};
  const end = options.end ?? vllm.numLayers;
  const staged = end < vllm.numLayers;
  const t = buildTrainingGraph(
    config.dims,
    config.train,
    TRAIN_GROUPS,
    staged
      ? stageOutLoss(vllm, config.editLayerI, end, logits, config.train.editLayerTwice)
      : continuationLoss(vllm, config.editLayerI, {
        logits,
        editLayerTwice: config.train.editLayerTwice,
      }),
  );
  const outputs: Record<string, Value> = { total_loss: t.outputs.total_loss };
  for (const name of Object.values(PART_OUTPUT)) outputs[name] = t.outputs[name];
  for (const [name, g] of Object.entries(t.grads)) outputs[`grad/${name}`] = g;
  if (staged) Object.assign(outputs, logits);
  else if (options.logits) {
    for (const [name, v] of Object.entries(logits)) outputs[`logits/${name}`] = v;
  }
  return { graph: t.graph, outputs };
}

/** Options of {@linkcode LiveEditTrainer.create}. */
export interface LiveEditTrainerOptions {
  /** The frozen VLLM's runner (the step graph's session is compiled and kept in it). */
  readonly runner: VllmRunner;
  /**
   * Runners of the same VLLM on the extra devices (`-edvc`) that {@linkcode
   * LiveEditTrainer.prepare} uses in turn, so a producer can prepare batches there while the
   * step runs on `runner`'s device; default: `runner` itself.
   */
  readonly prepareRunners?: readonly VllmRunner[];
  /**
   * Runners of the data-parallel replicas (`train --replicas R`, one per device group; the
   * first is usually `runner`). {@linkcode LiveEditTrainer.step} cuts each batch into one
   * contiguous slice per replica, runs the step graph of every slice on its replica at once
   * and adds the slices' losses and gradients up on the host, weighted by their sizes and in
   * replica order (`src/train/data_parallel.ts`): the whole batch's loss and gradient, then
   * one Adam step. Default: `[runner]` (the whole batch in one run).
   */
  readonly replicas?: readonly VllmRunner[];
  /** Editor config (dims, edit layer, loss weights, default lr). */
  readonly config: LiveEditConfig;
  /** Seed of the initial weights (when `params` is absent) and of every step's sampling. */
  readonly seed: number;
  /** Initial weights (copied); default: PyTorch's initialisation from `Rng(seed)`. */
  readonly params?: EditorParams;
  /**
   * The editor's own device when it shares no stage with the VLLM (`--editor-device`); default:
   * the editor's graph runs on the stage holding `l_e`, and continues through that stage's
   * later layers.
   */
  readonly editorDevice?: Placement;
  /** Called by {@linkcode LiveEditTrainer.close} (e.g. closing a runner opened for it). */
  readonly onClose?: () => Promise<void>;
  /** Lines to print before training (e.g. the placement on the devices). */
  readonly notes?: readonly string[];
}

/** LiveEdit's trainer on a frozen VLLM (see the module docs). */
export class LiveEditTrainer implements EditorTrainer {
  /** The editor config. */
  readonly config: LiveEditConfig;
  /** The runner of the frozen VLLM. */
  readonly runner: VllmRunner;
  /** The runners {@linkcode LiveEditTrainer.prepare} uses in turn. */
  readonly prepareRunners: readonly VllmRunner[];
  /** The runners of the data-parallel replicas (`[runner]` without data parallelism). */
  readonly replicas: readonly VllmRunner[];
  /** The sampling seed. */
  readonly seed: number;
  /** Lines to print before training (the placement on the devices). */
  readonly notes: readonly string[];
  readonly #params: EditorParams;
  readonly #adam: Adam;
  readonly #onClose?: () => Promise<void>;
  /** The editor's own device's runners, when it shares no stage. */
  readonly #editorRunners?: RunnerCache;
  #nextPrepare = 0;

  private constructor(options: LiveEditTrainerOptions, params: EditorParams) {
    this.config = options.config;
    this.runner = options.runner;
    if (options.editorDevice) {
      this.#editorRunners = new RunnerCache({
        ...options.editorDevice,
        cacheDir: options.runner.cacheDir,
        stats: options.runner.stats,
      });
    }
    this.prepareRunners = options.prepareRunners?.length
      ? options.prepareRunners
      : [options.runner];
    this.replicas = options.replicas?.length ? options.replicas : [options.runner];
    this.seed = options.seed;
    this.notes = options.notes ?? [];
    this.#params = params;
    this.#adam = new Adam(params, { lr: options.config.train.lr });
    this.#onClose = options.onClose;
  }

  /**
   * A trainer with fresh (or the given) weights and a fresh Adam. Throws naming the config
   * field that does not fit the VLLM, or the parameter that does not fit the config.
   */
  static create(options: LiveEditTrainerOptions): LiveEditTrainer {
    checkBackbone(options.config, options.runner);
    const dims = options.config.dims;
    let params: EditorParams;
    if (options.params) {
      checkParams(options.params, dims, "LiveEditTrainer.create");
      params = copyParams(options.params);
    } else {
      params = initParams(dims, new Rng(options.seed));
    }
    return new LiveEditTrainer(options, params);
  }

  /** The trainable parameters (the live tensors the optimiser updates in place). */
  parameters(): EditorParams {
    return this.#params;
  }

  /** Number of steps taken (Adam's step count). */
  get stepCount(): number {
    return this.#adam.stepCount;
  }

  /** Runs the frozen backbone for `batch` (see the module docs). */
  async prepare(batch: readonly EditSample[]): Promise<PreparedTrainBatch> {
    if (batch.length === 0) throw new Error("LiveEditTrainer.prepare: empty batch");
    const layer = this.config.editLayerI;
    const runner = this.prepareRunners[this.#nextPrepare++ % this.prepareRunners.length];
    const tensors: Record<string, Tensor> = {};
    const groups: Record<string, { ranges: Range[][]; lengths: number[] }> = {};
    for (const { name, kind } of TRAIN_GROUPS) {
      const examples = batch.map((s) => groupExample(s, name));
      const { batch: vb, hidden } = await layerReps(runner, layer, examples);
      const names = continuationInputNames(name);
      tensors[`${name}/hidden`] = hidden;
      tensors[names.attentionMask] = vb.attentionMask;
      tensors[names.labelIds] = vb.labelIds;
      tensors[names.labelMasks] = vb.labelMasks;
      groups[name] = {
        ranges: batch.map((s, r) =>
          requestParts(vb, r, `sample ${s.index} ${name} "${examples[r].prompt}"`)
        ),
        lengths: [...vb.lengths],
      };
      if (kind === "loc") {
        const twice = this.config.train.editLayerTwice;
        const logits = await originalLogits(runner, layer, hidden, vb.attentionMask, twice);
        tensors[names.originalLogits] = lastPositionsHost(logits, vb.labelIds.shape[1]);
      }
    }
    return { tensors, info: { size: batch.length, groups } satisfies PreparedInfo };
  }

  /**
   * Runs the step graph on `batch` with this step's sampling and returns its outputs (losses,
   * gradients and, with `options.logits`, each group's logits) without updating anything. With
   * `rows`, only the samples `[rows.start, rows.end)` (a replica's part; see `stepFeeds`), on
   * `runner` (default: {@linkcode LiveEditTrainer.runner}).
   */
  async evaluate(
    batch: PreparedTrainBatch,
    options: StepGraphOptions = {},
    sampling?: StepSampling,
    rows?: RowSlice,
    runner: VllmRunner = this.runner,
  ): Promise<Record<string, Tensor>> {
    const s = sampling ?? stepSampling(this.seed, this.stepCount + 1, preparedInfo(batch).size);
    const feeds = { ...this.#params, ...stepFeeds(this.config.dims, batch, s, rows) };
    const vllm = runner.vllm, end = this.#endOn(runner);
    const runEditor = (
      key: string,
      build: () => VllmGraph,
      f: Readonly<Record<string, Tensor>>,
    ) => this.#runEditor(runner, key, build, f);
    if (end < vllm.numLayers) {
      return await runStagedStep(
        {
          runner,
          config: this.config,
          groups: TRAIN_GROUPS,
          end,
          editorGraph: () => buildStepGraph(vllm, this.config, { end }),
          runEditor,
        },
        feeds,
        options.logits,
      );
    }
    const key = `liveedit-step:${options.logits ? "logits" : "train"}`;
    return await runEditor(key, () => buildStepGraph(vllm, this.config, options), feeds);
  }

  /**
   * One past the last decoder layer of the editor's step graph on `runner`: the end of the
   * stage holding `l_e`, or `l_e + 1` when the editor has its own device.
   */
  #endOn(runner: VllmRunner): number {
    const layer = this.config.editLayerI;
    if (this.#editorRunners && runner === this.runner) return layer + 1;
    return runner.stages[runner.stageOf(layer)].to;
  }

  /**
   * Runs a graph on `runner`'s editor device: the trainer's own editor device (for
   * {@linkcode LiveEditTrainer.runner}), or the stage holding `l_e`.
   */
  #runEditor(
    runner: VllmRunner,
    key: string,
    build: () => VllmGraph,
    feeds: Readonly<Record<string, Tensor>>,
  ): Promise<Record<string, Tensor>> {
    if (this.#editorRunners && runner === this.runner) {
      return this.#editorRunners.run(key, build, feeds);
    }
    return runner.run(key, build, feeds, runner.stageOf(this.config.editLayerI));
  }

  /**
   * One optimisation step at `lr` (see the module docs). Throws `LiveEdit training step N:
   * loss part 'P' is NaN (weights not updated)` (or an infinite value, or a gradient) before
   * the update.
   */
  async step(batch: PreparedTrainBatch, lr: number): Promise<StepLosses> {
    const step = this.stepCount + 1;
    const { losses, grads } = await this.#lossesAndGradients(batch);
    for (const [part, v] of [...Object.entries(losses.parts), ["total", losses.total] as const]) {
      if (!Number.isFinite(v)) {
        throw new Error(
          `LiveEdit training step ${step}: loss part '${part}' is ${v} (weights not updated)`,
        );
      }
    }
    for (const { name } of paramSpecs(this.config.dims)) {
      const g = grads[name];
      if (!g.data.every(Number.isFinite)) {
        throw new Error(
          `LiveEdit training step ${step}: the gradient of '${name}' is not finite ` +
            `(weights not updated)`,
        );
      }
    }
    this.#adam.step(grads, lr);
    return losses;
  }

  /**
   * This step's losses and gradients of `batch`: one run of the step graph on `runner`, or,
   * with several replicas, one run per slice of the batch on its replica at once, combined on
   * the host (see {@linkcode LiveEditTrainerOptions.replicas}).
   */
  async #lossesAndGradients(batch: PreparedTrainBatch) {
    const size = preparedInfo(batch).size;
    const sampling = stepSampling(this.seed, this.stepCount + 1, size);
    const names = paramSpecs(this.config.dims).map((s) => s.name);
    const gradsOf = (out: Record<string, Tensor>) =>
      Object.fromEntries(names.map((name) => [name, f32(out, `grad/${name}`)]));
    if (this.replicas.length === 1) {
      const out = await this.evaluate(batch, {}, sampling);
      return { losses: stepLosses(out), grads: gradsOf(out) };
    }
    const slices = replicaSlices(size, this.replicas.length);
    const results = await Promise.all(slices.map(async (rows, k) => {
      const out = await this.evaluate(batch, {}, sampling, rows, this.replicas[k]);
      const { total, parts } = stepLosses(out);
      return { losses: [total, ...LOSS_PARTS.map((p) => parts[p])], grads: gradsOf(out) };
    }));
    const { losses: [total, ...parts], grads } = combineReplicas(slices, results);
    return {
      losses: { total, parts: Object.fromEntries(LOSS_PARTS.map((p, i) => [p, parts[i]])) },
      grads,
    };
  }

  /** Copies of the weights and the optimiser state. */
  state(): TrainerState {
    return { weights: copyParams(this.#params), adam: this.#adam.state() };
  }

  /** Restores {@linkcode LiveEditTrainer.state} (copied in); errors name the tensor at fault. */
  load(state: TrainerState): void {
    checkParams(state.weights, this.config.dims, "LiveEditTrainer.load");
    this.#adam.load(state.adam);
    for (const [name, t] of Object.entries(this.#params)) t.data.set(state.weights[name].data);
  }

  /** Frees the editor device's sessions and runs the `onClose` given at creation. */
  async close(): Promise<void> {
    await this.#editorRunners?.close();
    await this.#onClose?.();
  }
}

/** Copies of `params`. */
function copyParams(params: Readonly<Record<string, Tensor<"f32">>>): EditorParams {
  return Object.fromEntries(
    Object.entries(params).map(([k, t]) => [k, new Tensor("f32", t.shape, t.data.slice())]),
  );
}

/** The loss parts of a step's outputs, for checks: `{ total, parts }`. */
export function stepLosses(out: Readonly<Record<string, Tensor>>): StepLosses {
  const parts = Object.fromEntries(
    LOSS_PARTS.map((p) => [p, toNumbers(out[PART_OUTPUT[p]])[0]]),
  );
  return { total: toNumbers(out.total_loss)[0], parts };
}

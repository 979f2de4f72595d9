/**
 * Training a VLLM's own weights on question/answer examples with the project's autodiff and
 * Adam: the model code is traced as for inference (every weight an external initializer of the
 * checkpoint), the label cross-entropy on the answer tokens is differentiated with respect to
 * every weight (`grad`), and the weights are lifted into graph inputs (`liftExternals`), so one
 * `session.run` takes the current weights and returns the loss and all gradients; PyTorch's Adam
 * updates the host copies. The demo pretrains its tiny BLIP-2 this way.
 *
 * A batch has images on every row or on none (as the VLLM takes them), so a step runs one batch
 * with images and, when there are text-only examples, one without, and adds the gradients
 * (each batch's loss is its mean over answer tokens, the two weighted by their token counts).
 *
 * With several runners (one per CPU worker, say), each of the two groups is cut into one
 * contiguous slice per runner (`replicaSlices`); every runner runs its slices in turn, the
 * runners at once, and the gradients are added up weighted by token counts in a fixed order
 * (group, then slice), whatever order the runners finish in. Held-out scoring deals its batches
 * out to the runners the same way.
 *
 * @module
 */
import { grad } from "../graph/grad.ts";
import type { Value } from "../graph/ir.ts";
import { liftExternals } from "../graph/lift.ts";
import * as op from "../graph/ops.ts";
import { labelLoss, lastPositions } from "../models/losses.ts";
import type { VllmRunner } from "../models/vllm/runner.ts";
import { type Request, VLLM_INPUTS } from "../models/vllm/processor.ts";
import type { Vllm, VllmGraph } from "../models/vllm/vllm.ts";
import { toNumbers } from "../tensor/elements.ts";
import { Rng } from "../tensor/rng.ts";
import { Tensor } from "../tensor/tensor.ts";
import { Adam, type AdamOptions } from "./adam.ts";
import { replicaSlices } from "./data_parallel.ts";

/** {@linkcode pretrainGraph} with the names of its weight inputs. */
export interface PretrainGraph extends VllmGraph {
  /** The checkpoint keys that are graph inputs now, in graph order. */
  readonly weights: readonly string[];
}

/**
 * The training graph of `vllm` (with images or text-only): the VLLM's inputs plus `label_ids`,
 * `label_masks` and every weight (by its checkpoint key) in; `loss` (mean cross-entropy over
 * the answer tokens, the LM head run on the label positions only), `correct` and `count`
 * (answer tokens whose argmax is the label, and all answer tokens, as f32 scalars) and, with
 * `grads`, `grad/<key>` for every weight out.
 */
export function pretrainGraph(
  vllm: Vllm,
  options: { readonly image: boolean; readonly grads: boolean },
): PretrainGraph {
  const { graph, outputs } = vllm.stageGraph(0, vllm.numLayers, {
    image: options.image,
    head: false,
  });
  const ids = graph.input(VLLM_INPUTS.labelIds, "i64", ["batch", "labels"]);
  const masks = graph.input(VLLM_INPUTS.labelMasks, "i64", ["batch", "labels"]);
  // the head on the label positions only: `[b, L, vocab]`, not `[b, T, vocab]`
  const atLabels = vllm.enter(lastPositions(outputs.hidden_out, ids));
  const logits = op.cast(vllm.head(graph, atLabels), "f32");
  const mask = op.cast(masks, "f32");
  const hits = op.cast(op.equal(op.argMax(lastPositions(logits, ids), -1, false), ids), "f32");
  const out: Record<string, Value> = {
    loss: labelLoss(logits, ids, masks),
    correct: op.reduceSum(op.mul(hits, mask)),
    count: op.reduceSum(mask),
  };
  if (options.grads) {
    const weights = graph.values.filter((v) => v.source.kind === "external");
    grad(out.loss, weights).forEach((g, i) => {
      const source = weights[i].source as { readonly name: string };
      out[`grad/${source.name}`] = g;
    });
  }
  const lifted = liftExternals(graph, out);
  return { graph: lifted.graph, outputs: lifted.outputs, weights: [...lifted.lifted.keys()] };
}

/** Loss and teacher-forced accuracy of some examples. */
export interface PretrainScore {
  /** Mean cross-entropy per answer token. */
  readonly loss: number;
  /** Fraction of answer tokens predicted right. */
  readonly accuracy: number;
  /** Number of answer tokens. */
  readonly tokens: number;
}

/**
 * Trains every weight of a VLLM (see the module docs). The weights are read from the model
 * directory's checkpoint when created; {@linkcode VllmPretrainer.weights} are the trained ones.
 */
export class VllmPretrainer {
  /** The runner whose sessions run the graphs (the first of {@linkcode VllmPretrainer.runners}). */
  readonly runner: VllmRunner;
  /** The runners that share each step's batch (see the module docs). */
  readonly runners: readonly VllmRunner[];
  readonly #weights: Record<string, Tensor<"f32">>;
  readonly #adam: Adam;

  private constructor(
    runners: readonly VllmRunner[],
    weights: Record<string, Tensor<"f32">>,
    adam: Adam,
  ) {
    this.runner = runners[0];
    this.runners = runners;
    this.#weights = weights;
    this.#adam = adam;
  }

  /**
   * Reads every weight of the first runner's VLLM checkpoint as f32 and sets up Adam over them.
   * `runners` are one runner, or several of the same VLLM (each step's batch is shared out among
   * them); throws when there is none or they run different VLLMs.
   */
  static async create(
    runners: VllmRunner | readonly VllmRunner[],
    adam: AdamOptions = {},
  ): Promise<VllmPretrainer> {
    const list: readonly VllmRunner[] = Array.isArray(runners) ? runners : [runners];
    if (list.length === 0) throw new Error("VllmPretrainer.create: no runner given");
    if (list.some((r) => r.vllm !== list[0].vllm)) {
      throw new Error("VllmPretrainer.create: the runners must run the same VLLM object");
    }
    const checkpoint = list[0].vllm.dir.checkpoint;
    const weights: Record<string, Tensor<"f32">> = {};
    for (const name of checkpoint.listTensors()) {
      weights[name] = await checkpoint.readAs(name, "f32");
    }
    return new VllmPretrainer(list, weights, new Adam(weights, adam));
  }

  /** The current weights by checkpoint key (live: updated in place by each step). */
  weights(): Readonly<Record<string, Tensor<"f32">>> {
    return this.#weights;
  }

  /** Number of steps taken. */
  get stepCount(): number {
    return this.#adam.stepCount;
  }

  /**
   * One Adam step at `lr` on `examples` (any mix of examples with and without an image); returns
   * the loss and accuracy before the update. Throws naming the step when the loss or a gradient
   * is not finite (weights unchanged).
   */
  async step(examples: readonly Request[], lr: number): Promise<PretrainScore> {
    const grads: Record<string, Float32Array> = {};
    const n = this.runners.length;
    const pieces = byImage(examples).flatMap((group) =>
      replicaSlices(group.length, n).map((s, k) => ({ rows: group.slice(s.start, s.end), k }))
    );
    const parts = (await this.#runAll(pieces, true)).map((out) => ({
      out,
      count: scalar(out.count),
    }));
    const total = parts.reduce((a, p) => a + p.count, 0);
    for (const { out, count } of parts) {
      for (const [key, t] of Object.entries(out)) {
        if (!key.startsWith("grad/")) continue;
        const name = key.slice(5), g = t.data as Float32Array;
        const acc = grads[name] ??= new Float32Array(g.length);
        for (let i = 0; i < g.length; i++) acc[i] += g[i] * count / total;
      }
    }
    const score = combine(parts.map((p) => p.out));
    const step = this.stepCount + 1;
    if (!Number.isFinite(score.loss)) {
      throw new Error(
        `VLLM pretraining step ${step}: the loss is ${score.loss} (weights unchanged)`,
      );
    }
    for (const name of Object.keys(this.#weights)) {
      const g = grads[name] ??= new Float32Array(this.#weights[name].size);
      if (!g.every(Number.isFinite)) {
        throw new Error(
          `VLLM pretraining step ${step}: the gradient of '${name}' is not finite (weights unchanged)`,
        );
      }
    }
    this.#adam.step(grads, lr);
    return score;
  }

  /** Loss and accuracy of `examples` under the current weights, in batches of `batchSize`. */
  async score(examples: readonly Request[], batchSize: number): Promise<PretrainScore> {
    const pieces: { rows: readonly Request[]; k: number }[] = [];
    for (const group of byImage(examples)) {
      for (let i = 0; i < group.length; i += batchSize) {
        pieces.push({
          rows: group.slice(i, i + batchSize),
          k: pieces.length % this.runners.length,
        });
      }
    }
    return combine(await this.#runAll(pieces, false));
  }

  /**
   * Runs every piece on its runner (`k`): each runner's pieces in turn, the runners at once;
   * the outputs in the order of `pieces`.
   */
  async #runAll(
    pieces: readonly { readonly rows: readonly Request[]; readonly k: number }[],
    grads: boolean,
  ): Promise<Record<string, Tensor>[]> {
    const outs: Record<string, Tensor>[] = new Array(pieces.length);
    await Promise.all(this.runners.map(async (runner, k) => {
      for (const [i, piece] of pieces.entries()) {
        if (piece.k === k) outs[i] = await this.#run(runner, piece.rows, grads);
      }
    }));
    return outs;
  }

  /** Runs the training (or scoring) graph on one batch of examples all with or without images. */
  async #run(
    runner: VllmRunner,
    examples: readonly Request[],
    grads: boolean,
  ): Promise<Record<string, Tensor>> {
    const vllm = runner.vllm;
    const batch = await vllm.prepare(examples);
    const image = batch.hasImages;
    return await runner.run(
      `pretrain:${image}:${grads}`,
      () => pretrainGraph(vllm, { image, grads }),
      {
        ...batch.feeds,
        [VLLM_INPUTS.labelIds]: batch.labelIds,
        [VLLM_INPUTS.labelMasks]: batch.labelMasks,
        ...this.#weights,
      },
    );
  }
}

/** `examples` split into those with an image and those without (empty groups left out). */
function byImage(examples: readonly Request[]): Request[][] {
  const withImage = examples.filter((e) => e.image !== undefined && e.image !== null);
  const without = examples.filter((e) => e.image === undefined || e.image === null);
  return [withImage, without].filter((g) => g.length > 0);
}

function scalar(t: Tensor): number {
  return toNumbers(t)[0];
}

/** The token-weighted loss and accuracy of several runs' outputs. */
function combine(outs: readonly Record<string, Tensor>[]): PretrainScore {
  let loss = 0, correct = 0, tokens = 0;
  for (const out of outs) {
    const n = scalar(out.count);
    loss += scalar(out.loss) * n;
    correct += scalar(out.correct);
    tokens += n;
  }
  return { loss: loss / tokens, accuracy: correct / tokens, tokens };
}

/** Copies of `weights` (e.g. to keep the best ones while training goes on). */
export function copyWeights(
  weights: Readonly<Record<string, Tensor<"f32">>>,
): Record<string, Tensor<"f32">> {
  return Object.fromEntries(
    Object.entries(weights).map(([k, t]) => [k, new Tensor("f32", t.shape, t.data.slice())]),
  );
}

/** Options of {@linkcode pretrainUntil}. */
export interface PretrainLoopOptions {
  /** Training examples (with and without images), drawn uniformly with replacement. */
  readonly examples: readonly Request[];
  /** Held-out examples whose accuracy decides when to stop. */
  readonly heldOut: readonly Request[];
  /** Examples per step. */
  readonly batchSize: number;
  /** Most steps. */
  readonly maxSteps: number;
  /**
   * Peak learning rate: reached after `warmup` steps (linear), then decayed linearly to a tenth
   * of it at `maxSteps`.
   */
  readonly lr: number;
  /** Warm-up steps (default 20). */
  readonly warmup?: number;
  /** Score the held-out examples every this many steps (and after the last). */
  readonly evalEvery: number;
  /** Stop at the first held-out accuracy >= this (default 1: run `maxSteps`). */
  readonly target?: number;
  /** Seed of the batch draws. */
  readonly seed: number;
  /** Called after every step with its number (from 1) and score. */
  readonly onStep?: (step: number, score: PretrainScore) => void;
  /** Called after every held-out scoring. */
  readonly onEval?: (step: number, score: PretrainScore) => void;
}

/** What {@linkcode pretrainUntil} did. */
export interface PretrainResult {
  /** Steps taken. */
  readonly steps: number;
  /** The last held-out score. */
  readonly heldOut: PretrainScore;
  /** Whether the held-out accuracy reached the target. */
  readonly reached: boolean;
}

/**
 * Trains with `trainer` on random batches of `o.examples` until the held-out accuracy, scored
 * every `o.evalEvery` steps, reaches `o.target`, or for `o.maxSteps` steps.
 */
export async function pretrainUntil(
  trainer: VllmPretrainer,
  o: PretrainLoopOptions,
): Promise<PretrainResult> {
  if (o.examples.length === 0) throw new Error("VLLM pretraining: no training examples");
  if (o.heldOut.length === 0) throw new Error("VLLM pretraining: no held-out examples");
  const rng = new Rng(o.seed), warmup = o.warmup ?? 20, target = o.target ?? 1;
  let heldOut: PretrainScore | undefined;
  for (let step = 1; step <= o.maxSteps; step++) {
    const batch = Array.from({ length: o.batchSize }, () => o.examples[rng.int(o.examples.length)]);
    const decay = 1 - 0.9 * Math.max(0, step - warmup) / Math.max(1, o.maxSteps - warmup);
    const score = await trainer.step(batch, o.lr * Math.min(1, step / warmup) * decay);
    o.onStep?.(step, score);
    if (step % o.evalEvery === 0 || step === o.maxSteps) {
      heldOut = await trainer.score(o.heldOut, 4 * o.batchSize);
      o.onEval?.(step, heldOut);
      if (heldOut.accuracy >= target) return { steps: step, heldOut, reached: true };
    }
  }
  heldOut ??= await trainer.score(o.heldOut, 4 * o.batchSize);
  return { steps: o.maxSteps, heldOut, reached: heldOut.accuracy >= target };
}

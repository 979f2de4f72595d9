/**
 * LiveEdit's side of the frozen VLLM at the edit layer `l_e`: the layer-`l_e` representations
 * of `prompt + target` requests, their four parts (spec §2: pre-vision, vision `vt_range`,
 * query = after the vision tokens up to the last prompt token, answer = the target), where the
 * routing reads them at inference (spec §3), the teacher-forced predictions at the target
 * positions, and the backbone part of the training loss (spec §4): continue the decoder at
 * layer `l_e + 1` from `H + residual` — exactly as inference runs, not layer `l_e` twice as the
 * authors' release trains — to mean token cross-entropy (reliability, generality) or
 * KL(p_edited ‖ p_original) (image locality).
 *
 * Label positions follow `Vllm.prepare`: the last `L` positions of the logits against the
 * label ids / masks `[b, L]`. The training losses are per-sample means (over the target tokens
 * of each example), averaged over the batch, as the authors' `train_a_batch` averages its
 * per-sample losses; `src/models/losses.ts` averages over all tokens of a batch instead.
 *
 * @module
 */
import type { Prediction } from "../api.ts";
import type { Value } from "../../graph/ir.ts";
import * as op from "../../graph/ops.ts";
import { backboneOf } from "../../models/backbones.ts";
import { lastPositions } from "../../models/losses.ts";
import { type PreparedBatch, type Request, VLLM_INPUTS } from "../../models/vllm/processor.ts";
import type { Vllm } from "../../models/vllm/vllm.ts";
import { argmax, type VllmRunner } from "../../models/vllm/runner.ts";
import { f32 } from "../../runtime/outputs.ts";
import { toNumbers } from "../../tensor/elements.ts";
import { Tensor } from "../../tensor/tensor.ts";
import type { LiveEditConfig } from "./config.ts";
import type { BackboneLoss } from "./losses.ts";
import type { ExampleGroup } from "./train_batch.ts";
import type { RouteInput } from "./routing.ts";
import type { Range } from "./tokens.ts";

/** A batch of requests prepared by the VLLM and its hidden states at the output of `l_e`. */
export interface LayerReps {
  /** Inputs, labels, `vt_range`, prompt ends, … (`Vllm.prepare`). */
  readonly batch: PreparedBatch;
  /** Output of decoder layer `l_e`, f32 `[b, T, d]` (right padded). */
  readonly hidden: Tensor<"f32">;
}

/**
 * Runs the frozen VLLM on `prompt + target` of `requests` (all with an image or all without)
 * up to and including decoder layer `layer`.
 */
export async function layerReps(
  runner: VllmRunner,
  layer: number,
  requests: readonly Request[],
): Promise<LayerReps> {
  const batch = await runner.vllm.prepare(requests);
  return { batch, hidden: await runner.hiddenAt(batch, layer) };
}

/**
 * The four parts of row `row` of `batch` (spec §2): pre-vision `[0, v0)`, vision `[v0, v1)`,
 * query `[v1, promptEnd)` (up to and including the last prompt token), answer
 * `[promptEnd, length)`. Throws naming `what` when the row has no image or no query token.
 */
export function requestParts(batch: PreparedBatch, row: number, what: string): Range[] {
  const vision = batch.vtRange[row];
  if (vision == null) throw new Error(`${what}: has no image (LiveEdit edits need one)`);
  const promptEnd = batch.promptEnds[row], length = batch.lengths[row];
  if (!(vision[1] < promptEnd && promptEnd < length)) {
    throw new Error(
      `${what}: needs query tokens after the vision tokens [${vision}) and a target: ` +
        `prompt ends at ${promptEnd}, sequence length ${length}`,
    );
  }
  return [[0, vision[0]], [vision[0], vision[1]], [vision[1], promptEnd], [promptEnd, length]];
}

/** Where the routing reads each row of `batch` (spec §3): its vision tokens and query end. */
export function routeInputs(batch: PreparedBatch): RouteInput[] {
  return batch.vtRange.map((vision, i) =>
    vision == null ? { vision: null } : { vision, queryEnd: batch.promptEnds[i] }
  );
}

/** Row `row` of `hidden` `[b, T, d]`, its first `length` tokens: `[1, length, d]` (a copy). */
export function rowReps(hidden: Tensor<"f32">, row: number, length: number): Tensor<"f32"> {
  const [, T, d] = hidden.shape;
  if (length > T) throw new Error(`rowReps: ${length} tokens of a row of ${T}`);
  const start = row * T * d;
  return new Tensor("f32", [1, length, d], hidden.data.slice(start, start + length * d));
}

/** The last `count` positions of `logits` `[b, T, V]` → `[b, count, V]` (a copy). */
export function lastPositionsHost(logits: Tensor<"f32">, count: number): Tensor<"f32"> {
  const [b, T, V] = logits.shape;
  if (count > T) throw new Error(`lastPositions: ${count} positions of [${logits.shape}]`);
  const src = logits.data, out = new Float32Array(b * count * V);
  for (let r = 0; r < b; r++) {
    out.set(src.subarray((r * T + T - count) * V, (r * T + T) * V), r * count * V);
  }
  return new Tensor("f32", [b, count, V], out);
}

/**
 * Teacher-forced predictions: for each row of `logits` `[b, T, V]`, the argmax at the
 * positions that predict the target tokens (the last `L` positions where `labelMasks` is 1)
 * and the target ids there.
 */
export function targetPredictions(logits: Tensor<"f32">, batch: PreparedBatch): Prediction[] {
  const [b, T, V] = logits.shape;
  const L = batch.labelIds.shape[1];
  const ids = toNumbers(batch.labelIds), masks = toNumbers(batch.labelMasks);
  const data = logits.data;
  const out: Prediction[] = [];
  for (let r = 0; r < b; r++) {
    const predicted: number[] = [], target: number[] = [];
    for (let c = 0; c < L; c++) {
      if (masks[r * L + c] === 0) continue;
      predicted.push(argmax(data, (r * T + T - L + c) * V, V));
      target.push(ids[r * L + c]);
    }
    out.push({ predicted, target });
  }
  return out;
}

/** `mean_rows(Σ_t x·mask / Σ_t mask)` for `x` `[b, L]` and an i64 `mask` `[b, L]`. */
function sampleMean(x: Value, mask: Value): Value {
  const m = op.cast(mask, x.dtype);
  return op.reduceMean(op.div(op.reduceSum(op.mul(x, m), [1]), op.reduceSum(m, [1])));
}

/**
 * Token cross-entropy of `labelIds` `[b, L]` under the last `L` positions of `logits`
 * `[b, T, V]`, averaged over each row's masked positions, then over the rows. A scalar.
 */
export function sampleLabelLoss(logits: Value, labelIds: Value, labelMasks: Value): Value {
  const logp = op.logSoftmax(lastPositions(logits, labelIds), -1);
  const picked = op.squeeze(op.gatherElements(logp, op.unsqueeze(labelIds, [2]), 2), [2]);
  return op.neg(sampleMean(picked, labelMasks));
}

/**
 * `KL(p_edited ‖ p_original)` per position on the last `L` positions of `logits` and
 * `originalLogits` (`[b, T, V]` and `[b, T' ≥ L, V]`), averaged over each row's masked
 * positions, then over the rows. A scalar.
 */
export function sampleKLLoss(logits: Value, originalLogits: Value, labelMasks: Value): Value {
  const logp = op.logSoftmax(lastPositions(logits, labelMasks), -1);
  const logq = op.logSoftmax(lastPositions(originalLogits, labelMasks), -1);
  const kl = op.reduceSum(op.mul(op.exp(logp), op.sub(logp, logq)), [2]);
  return sampleMean(kl, labelMasks);
}

/** Graph input names of one example group of the continuation loss. */
export interface ContinuationInputNames {
  /** `<group>/attention_mask`. */
  readonly attentionMask: string;
  /** `<group>/label_ids`. */
  readonly labelIds: string;
  /** `<group>/label_masks`. */
  readonly labelMasks: string;
  /** `<group>/original_logits`. */
  readonly originalLogits: string;
}

/** Names of the graph inputs {@linkcode continuationLoss} declares for group `group`. */
export function continuationInputNames(group: string): ContinuationInputNames {
  return {
    attentionMask: `${group}/attention_mask`,
    labelIds: `${group}/label_ids`,
    labelMasks: `${group}/label_masks`,
    originalLogits: `${group}/original_logits`,
  };
}

/**
 * Decoder layer `layer` of `vllm` applied to `hidden` `[b, T, d]` (f32) as its input, with
 * `attentionMask` `[b, T]`: the layer's output, f32. Given the layer's own output, this is the
 * layer applied a second time, as the authors' released training does (spec §4).
 */
export function reapplyLayer(
  vllm: Vllm,
  layer: number,
  hidden: Value,
  attentionMask: Value,
): Value {
  const state = vllm.resume(hidden.graph, hidden, attentionMask);
  return op.cast(vllm.layers(state, layer, layer + 1).hidden, "f32");
}

/**
 * The unedited logits `[b, T, vocab]` of the training's locality examples from their
 * layer-`layer` outputs `hidden`: the model continued at layer `layer + 1` (one pass), or with
 * `editLayerTwice` from layer `layer` applied again to `hidden` (the model's own stage graph of
 * that layer, on the stage that holds it), as the authors' released training computes them.
 */
export async function originalLogits(
  runner: VllmRunner,
  layer: number,
  hidden: Tensor<"f32">,
  attentionMask: Tensor,
  editLayerTwice: boolean,
): Promise<Tensor<"f32">> {
  if (!editLayerTwice) return await runner.logitsFrom(layer, hidden, attentionMask);
  const vllm = runner.vllm, n = VLLM_INPUTS;
  const again = await runner.run(
    `liveedit-twice:${layer}`,
    () => vllm.stageGraph(layer, layer + 1, { image: false, head: false }),
    { [n.hidden]: hidden, [n.attentionMask]: attentionMask },
    runner.stageOf(layer),
  );
  return await runner.logitsFrom(layer, f32(again, "hidden_out"), attentionMask);
}

/** Options of {@linkcode continuationLoss}. */
export interface ContinuationOptions {
  /** Gets each group's logits (by group name), for checks. */
  readonly logits?: Record<string, Value>;
  /**
   * Continue from layer `l_e` applied again to `H`, plus the residual, as the authors' released
   * training does (spec §4), instead of from `H + residual` (default false: as inference runs).
   */
  readonly editLayerTwice?: boolean;
}

/**
 * The loss of group `group` from its `logits` `[rows, len, vocab]` (f32) in `logits`' graph:
 * declares `<group>/label_masks` and `<group>/label_ids` i64 `[rows, labels]` and, for
 * locality, `<group>/original_logits` `[rows, labels, vocab]` (the unedited model's logits at
 * the last `labels` positions); mean token cross-entropy, or KL(p_edited ‖ p_original) for
 * locality, per sample and then over the rows.
 */
export function groupLoss(vllm: Vllm, group: ExampleGroup, logits: Value): Value {
  const g = logits.graph, names = continuationInputNames(group.name);
  const rows = logits.shape[0];
  const labels = `${group.name}/labels`;
  const labelMasks = g.input(names.labelMasks, "i64", [rows, labels]);
  if (group.kind === "loc") {
    const vocab = vllm.config.vocabSize;
    const original = g.input(names.originalLogits, vllm.dtype, [rows, labels, vocab]);
    return sampleKLLoss(logits, original, labelMasks);
  }
  return sampleLabelLoss(logits, g.input(names.labelIds, "i64", [rows, labels]), labelMasks);
}

/**
 * The backbone loss of the training graph for `vllm` edited at `layer`: per group, input
 * `<group>/attention_mask` i64 `[rows, len]` and the label inputs of {@linkcode groupLoss}
 * (the original logits from {@linkcode originalLogits}); the logits continue from
 * `H + residual` at layer `layer + 1` (with `editLayerTwice`, from `layer(H) + residual`).
 */
export function continuationLoss(
  vllm: Vllm,
  layer: number,
  options: ContinuationOptions = {},
): BackboneLoss {
  const logits = options.logits;
  return (residual, group) => {
    const g = group.graph, names = continuationInputNames(group.name);
    const [rows, len] = group.hidden.shape;
    const mask = g.input(names.attentionMask, "i64", [rows, len]);
    const from = options.editLayerTwice
      ? reapplyLayer(vllm, layer, group.hidden, mask)
      : group.hidden;
    const out = vllm.continueFrom(layer, op.add(from, residual), mask);
    if (logits) logits[group.name] = out;
    return groupLoss(vllm, group, out);
  };
}

/**
 * Throws naming the config (and where it was read from) and the field when `config` does not
 * fit `runner`'s VLLM (named by its directory): `llm_mid_dim` must be its hidden size,
 * `edit_layer_i` one of its decoder layers.
 */
export function checkBackbone(config: LiveEditConfig, runner: VllmRunner): void {
  const vllm = runner.vllm, layer = config.editLayerI, d = config.dims.llmMidDim;
  const what = `LiveEdit config for ${config.editModelName}` +
    (config.source === undefined ? "" : ` (${config.source})`);
  if (d !== vllm.hiddenSize) {
    throw new Error(
      `${what}: llm_mid_dim ${d} differs from the hidden size ${vllm.hiddenSize} of the ` +
        `model in ${vllm.dir.dir}`,
    );
  }
  if (!(layer < vllm.numLayers)) {
    const path = backboneOf(vllm.family)?.layerPath ?? "layers";
    throw new Error(
      `${what}: edit_layer_i ${layer} is not a decoder layer of the model in ${vllm.dir.dir} ` +
        `(${vllm.numLayers} layers, ${path}.0 to ${path}.${vllm.numLayers - 1})`,
    );
  }
}

/**
 * A training step of LiveEdit through the stages of a placed VLLM (spec §4, backbone frozen):
 * the editor's graph runs on its device and continues the decoder from `H + residual` at layer
 * `l_e + 1` up to the end of its stage; the later stages continue it, each a graph on its own
 * device; the gradients then flow back stage by stage, each stage's backward graph taking the
 * gradient of its output from the next stage.
 *
 * - The editor's graph (`buildStepGraph` with `end`) is compiled twice from one trace: forward,
 *   to `<group>/stage_out` (the hidden states at the end of its layers), and backward, to the
 *   gradients of the editor parameters. Its backward objective is the routing losses plus
 *   `Σ_group λ_kind · Σ(stage_out ⊙ <group>/stage_grad)`, whose parameter gradients are those
 *   of the whole loss when `stage_grad` is the gradient of the group's loss at `stage_out`.
 * - A middle stage ({@linkcode stageGraph} `"forward"` / `"backward"`) maps `<group>/stage_in`
 *   to `<group>/stage_out`, and back `<group>/stage_grad` to `<group>/stage_in_grad`; its
 *   backward graph recomputes its forward pass from the saved `stage_in` (activations are not
 *   kept across session runs, only the stage boundaries).
 * - The last stage (`"loss"`) ends in each group's loss (`groupLoss`) and its gradient at the
 *   stage's input.
 *
 * The losses and gradients are those of the one-graph step up to float rounding; the total is
 * summed on the host in the graph's order and in f32.
 *
 * @module
 */
import { grad } from "../../graph/grad.ts";
import { Graph, type Value } from "../../graph/ir.ts";
import * as op from "../../graph/ops.ts";
import type { VllmGraph } from "../../models/vllm/vllm.ts";
import type { VllmRunner } from "../../models/vllm/runner.ts";
import { f32 } from "../../runtime/outputs.ts";
import { toNumbers } from "../../tensor/elements.ts";
import { Tensor } from "../../tensor/tensor.ts";
import { continuationInputNames, groupLoss, reapplyLayer } from "./backbone.ts";
import type { LiveEditConfig } from "./config.ts";
import type { BackboneLoss } from "./losses.ts";
import type { ExampleGroup, ExampleKind } from "./train_batch.ts";

/** Graph input and output names of group `group` at a stage boundary. */
export function stageNames(group: string) {
  return {
    /** The hidden states a stage starts from, f32 `[rows, len, d]`. */
    in: `${group}/stage_in`,
    /** The hidden states at the end of the stage. */
    out: `${group}/stage_out`,
    /** The gradient of the group's loss at `out` (from the next stage). */
    grad: `${group}/stage_grad`,
    /** The gradient of the group's loss at `in`. */
    inGrad: `${group}/stage_in_grad`,
  };
}

/**
 * The editor graph's backbone part when later stages continue it: `H + residual` (with
 * `editLayerTwice`, `layer(H) + residual`, as `continuationLoss`) through layers
 * `layer + 1 … end - 1`, kept as `<group>/stage_out` in `outs`, and `Σ(stage_out ⊙ stage_grad)`
 * as the group's loss (see the module docs).
 */
export function stageOutLoss(
  vllm: VllmRunner["vllm"],
  layer: number,
  end: number,
  outs: Record<string, Value>,
  editLayerTwice = false,
): BackboneLoss {
  return (residual, group) => {
    const g = group.graph, names = stageNames(group.name);
    const [rows, len] = group.hidden.shape;
    const mask = g.input(continuationInputNames(group.name).attentionMask, "i64", [rows, len]);
    const from = editLayerTwice ? reapplyLayer(vllm, layer, group.hidden, mask) : group.hidden;
    const state = vllm.resume(g, op.add(from, residual), mask);
    const out = op.cast(vllm.layers(state, layer + 1, end).hidden, "f32");
    outs[names.out] = out;
    const gradient = g.input(names.grad, "f32", [rows, len, vllm.hiddenSize]);
    return op.reduceSum(op.mul(out, gradient));
  };
}

/** What a stage graph computes (see the module docs). */
export type StageMode = "forward" | "backward" | "loss";

/**
 * The graph of decoder layers `[from, to)` for every group of `groups` (see the module docs):
 * `"forward"` to `<group>/stage_out`; `"backward"` to `<group>/stage_in_grad` from
 * `<group>/stage_grad`; `"loss"` (`to` the last layer) to `loss/<group>` and
 * `<group>/stage_in_grad`, with `logits` also `logits/<group>`.
 */
export function stageGraph(
  vllm: VllmRunner["vllm"],
  groups: readonly ExampleGroup[],
  from: number,
  to: number,
  mode: StageMode,
  logits = false,
): VllmGraph {
  if (mode === "loss" && to !== vllm.numLayers) {
    throw new Error(`LiveEdit stage ${from}..${to}: the loss is taken on the last stage only`);
  }
  const g = new Graph();
  const outputs: Record<string, Value> = {};
  const inputs: Value[] = [];
  let objective: Value | null = null;
  const add = (v: Value) => (objective = objective ? op.add(objective, v) : v);
  for (const group of groups) {
    const names = stageNames(group.name);
    const rows = group.name, len = `${group.name}/hidden_len`;
    const input = g.input(names.in, "f32", [rows, len, vllm.hiddenSize]);
    inputs.push(input);
    const mask = g.input(continuationInputNames(group.name).attentionMask, "i64", [rows, len]);
    const hidden = vllm.layers(vllm.resume(g, input, mask), from, to).hidden;
    if (mode === "loss") {
      const out = op.cast(vllm.head(g, hidden), "f32");
      if (logits) outputs[`logits/${group.name}`] = out;
      const loss = groupLoss(vllm, group, out);
      outputs[`loss/${group.name}`] = loss;
      add(loss);
      continue;
    }
    const out = op.cast(hidden, "f32");
    if (mode === "forward") outputs[names.out] = out;
    else add(op.reduceSum(op.mul(out, g.input(names.grad, "f32", [rows, len, vllm.hiddenSize]))));
  }
  if (mode !== "forward") {
    const grads = grad(objective!, inputs);
    groups.forEach((group, i) => (outputs[stageNames(group.name).inGrad] = grads[i]));
  }
  return { graph: g, outputs };
}

/** What {@linkcode runStagedStep} runs. */
export interface StagedStep {
  /** The placed VLLM. */
  readonly runner: VllmRunner;
  /** The editor config (edit layer, loss weights). */
  readonly config: LiveEditConfig;
  /** The example groups of a batch. */
  readonly groups: readonly ExampleGroup[];
  /** One past the last layer of the editor's graph; later layers run on the runner's stages. */
  readonly end: number;
  /** Traces the editor's step graph ending at `end` (all its outputs). */
  readonly editorGraph: () => VllmGraph;
  /** Runs a graph on the editor's device (compiled once per key). */
  readonly runEditor: (
    key: string,
    build: () => VllmGraph,
    feeds: Readonly<Record<string, Tensor>>,
  ) => Promise<Record<string, Tensor>>;
}

/** `traced` with only the outputs `keep` accepts. */
function only(traced: VllmGraph, keep: (name: string) => boolean): VllmGraph {
  const outputs = Object.fromEntries(Object.entries(traced.outputs).filter(([k]) => keep(k)));
  return { graph: traced.graph, outputs };
}

/**
 * One step's outputs through the stages (see the module docs), named as the one-graph step's:
 * `total_loss`, `loss/<group>` (and `logits/<group>` with `logits`), `soft/loss`,
 * `hard_neib/loss`, `hard_prot/loss` and `grad/<param>`. `feeds` are the step graph's (the
 * parameters, the packed batch, each group's mask, labels and original logits).
 */
export async function runStagedStep(
  step: StagedStep,
  feeds: Readonly<Record<string, Tensor>>,
  logits = false,
): Promise<Record<string, Tensor>> {
  const { runner, groups, end } = step, vllm = runner.vllm;
  const names = groups.map((g) => stageNames(g.name));
  const outNames = new Set(names.map((n) => n.out));
  const forward = await step.runEditor(
    `liveedit-step-forward:${end}`,
    () => only(step.editorGraph(), (k) => outNames.has(k)),
    feeds,
  );
  const segments = runner.stages.flatMap((s, stage) =>
    s.to > end ? [{ stage, from: Math.max(end, s.from), to: s.to }] : []
  );
  let x: Record<string, Tensor> = {};
  names.forEach((n) => (x[n.in] = forward[n.out]));
  const saved: Record<string, Tensor>[] = [];
  for (const s of segments.slice(0, -1)) {
    saved.push(x);
    const out = await runner.run(
      `liveedit-stage-forward:${s.from}:${s.to}`,
      () => stageGraph(vllm, groups, s.from, s.to, "forward"),
      { ...feeds, ...x },
      s.stage,
    );
    x = {};
    names.forEach((n) => (x[n.in] = out[n.out]));
  }
  const last = segments[segments.length - 1];
  const result = await runner.run(
    `liveedit-stage-loss:${last.from}:${logits}`,
    () => stageGraph(vllm, groups, last.from, last.to, "loss", logits),
    { ...feeds, ...x },
    last.stage,
  );
  let gradients: Record<string, Tensor> = {};
  names.forEach((n) => (gradients[n.grad] = result[n.inGrad]));
  for (let i = segments.length - 2; i >= 0; i--) {
    const s = segments[i];
    const out = await runner.run(
      `liveedit-stage-backward:${s.from}:${s.to}`,
      () => stageGraph(vllm, groups, s.from, s.to, "backward"),
      { ...feeds, ...saved[i], ...gradients },
      s.stage,
    );
    gradients = {};
    names.forEach((n) => (gradients[n.grad] = out[n.inGrad]));
  }
  const parts = ["soft/loss", "hard_neib/loss", "hard_prot/loss"];
  const backward = await step.runEditor(
    `liveedit-step-backward:${end}`,
    () => only(step.editorGraph(), (k) => k.startsWith("grad/") || parts.includes(k)),
    { ...feeds, ...gradients },
  );
  const out: Record<string, Tensor> = {};
  for (const [k, v] of Object.entries(result)) if (!k.endsWith("/stage_in_grad")) out[k] = v;
  Object.assign(out, backward);
  out.total_loss = totalLoss(step.config, groups, out);
  return out;
}

/**
 * The total loss from its parts, in the one-graph step's order and in f32:
 * `Σ λ_kind · loss/<group>`, then `+ λ_soft · soft`, then `+ λ_hard · (hard_neib + hard_prot)`.
 */
function totalLoss(
  config: LiveEditConfig,
  groups: readonly ExampleGroup[],
  out: Readonly<Record<string, Tensor>>,
): Tensor<"f32"> {
  const t = config.train;
  const lambda: Record<ExampleKind, number> = {
    rel: t.relLambda,
    gen: t.genLambda,
    loc: t.locLambda,
  };
  const value = (name: string) => toNumbers(f32(out, name))[0];
  let total: number | null = null;
  const term = (v: number, w: number) => {
    const x = Math.fround(v * w);
    total = total === null ? x : Math.fround(total + x);
  };
  for (const g of groups) term(value(`loss/${g.name}`), lambda[g.kind]);
  term(value("soft/loss"), t.softRoutingLambda);
  term(Math.fround(value("hard_neib/loss") + value("hard_prot/loss")), t.hardRoutingLambda);
  return new Tensor("f32", [], Float32Array.of(total!));
}

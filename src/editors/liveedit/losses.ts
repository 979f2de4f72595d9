/**
 * Training the editor (spec §4, backbone frozen) as ONE differentiable graph: experts for
 * every request of the batch, the edit residual of every reliability / generality /
 * locality example under its expert mask, the soft routing loss and the two hard routing
 * losses; the total, each part, and the gradients of all editor parameters via `grad()`.
 *
 * The backbone part is pluggable: a {@linkcode BackboneLoss} gets the residual of a group of
 * examples and returns their mean loss (the real one continues the decoder from layer
 * `l_e + 1` on `H + residual`: cross-entropy for reliability and generality, KL to the
 * unedited model for locality). The graph is built once with dynamic dims (batch size,
 * sequence lengths, number of requests); `train_batch.ts` packs the feeds of one batch and
 * draws its masks and pairs.
 *
 * @module
 */
import { grad } from "../../graph/grad.ts";
import { Graph, type Value } from "../../graph/ir.ts";
import * as op from "../../graph/ops.ts";
import type { EditorDims, TrainConfig } from "./config.ts";
import {
  extractFromVisprot,
  extractQuery,
  extractVision,
  lowRankGenerator,
  type Tokens,
} from "./modules.ts";
import { paramInputs, paramSpecs, type ParamValues } from "./params.ts";
import { editResidual, pairedSimilarity, similarity, softRouting } from "./routing.ts";
import { flattenTokens, selectInput } from "./tokens.ts";
import { type ExampleGroup, type ExampleKind, PAIR_ROW_OFFSET } from "./train_batch.ts";

/** Eps inside every log of the routing losses. */
export const LOSS_EPS = 1e-8;

/** What a {@linkcode BackboneLoss} sees of a group. */
export interface GroupValues extends ExampleGroup {
  /** The graph being built (for the loss's own inputs, e.g. labels or original logits). */
  readonly graph: Graph;
  /** Layer-`l_e` outputs of the group's examples, `[name, name_len, d]`, padded at the end. */
  readonly hidden: Value;
}

/**
 * The backbone part of the loss: from the residual `[b, L, d]` of a group's examples (to be
 * added to `group.hidden`) to their mean loss, a scalar.
 */
export type BackboneLoss = (residual: Value, group: GroupValues) => Value;

/** The loss weights (`train_cfg` lambdas). */
export type LossWeights = Pick<
  TrainConfig,
  "relLambda" | "genLambda" | "locLambda" | "softRoutingLambda" | "hardRoutingLambda"
>;

/** The training graph: named outputs (losses and intermediate values) and gradients. */
export interface TrainingGraph {
  /** The graph. */
  readonly graph: Graph;
  /**
   * `total_loss`, `loss/<group>`, `soft/…`, `hard_neib/…`, `hard_prot/…`, `hard/loss`, and per
   * group `<group>/iqr`, `<group>/fuse_coe`, `<group>/edit_residual`.
   */
  readonly outputs: Record<string, Value>;
  /** `d total_loss / d param` by parameter name. */
  readonly grads: Record<string, Value>;
}

/** `x[i, idx[i]]` for `x` `[b, c]` and i64 `idx` `[b]` → `[b]`. */
function pick(x: Value, idx: Value): Value {
  return op.squeeze(op.gatherElements(x, op.unsqueeze(idx, [1]), 1), [1]);
}

/**
 * Column indices for the rows of `x` `[rows, …]`, which are the pairs `offset, …,
 * offset + rows - 1` of a batch of `b` pairs: the diagonal `offset + i`, its roll by one
 * (`b - 1` for pair 0, else the pair before), and `b` (the prototype column of a
 * `[rows, b+1]` matrix). For the whole batch (`offset` 0, `rows` = `b`): `0, 1, …, b-1`,
 * `b-1, 0, …, b-2` and `b, …, b`.
 */
function diagonalIndices(
  x: Value,
  offset: Value,
  b: Value,
): Record<"diag" | "rolled" | "last", Value> {
  const g = x.graph;
  const rows = op.squeeze(op.dimOf(x, 0), [0]);
  const diag = op.range(offset, op.add(offset, rows), op.scalar(g, "i64", 1), x.shape[0]);
  const rolled = op.where(op.equal(diag, 0), op.sub(b, 1), op.sub(diag, 1));
  return { diag, rolled, last: op.expandLike(b, diag) };
}

/** The size of axis `axis` of `x` as an i64 scalar. */
function sizeOf(x: Value, axis: number): Value {
  return op.squeeze(op.dimOf(x, axis), [0]);
}

/** `-mean(log(x + eps))`. */
function negMeanLog(x: Value): Value {
  return op.neg(op.reduceMean(op.log(op.add(x, LOSS_EPS))));
}

/**
 * Soft routing loss on neighbour pairs: `t = similarity(iqr_i, eqr_j)` `[rows, b]`;
 * `-mean log diag(softmax rows)` + `-mean(log sigmoid(pos) + log(1 - sigmoid(neg)))` with
 * `neg_i = t[i, i-1 mod b]` (the batch rolled by one). The rows `iqrs` are the pairs from
 * `offset` on (an i64 scalar; default 0, with `rows` = `b`: the whole batch).
 */
export function softRoutingLoss(dims: EditorDims, iqrs: Value, eqrs: Value, offset?: Value) {
  const { relaSim, absSim } = softRouting(similarity(dims, iqrs, eqrs), null);
  const { diag, rolled } = diagonalIndices(
    relaSim,
    offset ?? op.scalar(relaSim.graph, "i64", 0),
    sizeOf(relaSim, 1),
  );
  const absPosSim = pick(absSim, diag);
  const absNegSim = pick(absSim, rolled);
  const lossRela = negMeanLog(pick(relaSim, diag));
  const lossAbs = op.neg(op.reduceMean(op.add(
    op.log(op.add(absPosSim, LOSS_EPS)),
    op.log(op.add(op.sub(1, absNegSim), LOSS_EPS)),
  )));
  return {
    relaSim,
    absSim,
    absPosSim,
    absNegSim,
    lossRela,
    lossAbs,
    loss: op.add(lossRela, lossAbs),
  };
}

/**
 * Hard routing of pairs: per row, `softmax` over `[similarity(ivr_i, evr_j) for j < b,
 * sim_prot_i]` → `[b, b+1]` (the prototype column last). `ivrs` come from `inpt_extractor`,
 * `evrs` from `edit_extractor`, `ivrsProt = inpt_extractor.extract_from_visprot`.
 */
export function hardRoutingSim(dims: EditorDims, ivrs: Value, evrs: Value, ivrsProt: Value) {
  const simRaw = similarity(dims, ivrs, evrs);
  const simProt = pairedSimilarity(dims, ivrs, ivrsProt);
  return { simRaw, simProt, sim: op.softmax(op.concat([simRaw, simProt], 1), 1) };
}

/**
 * The pair selections of one side: `(vision, query)` of one example per sample, `rows` rows
 * (`pairs` for the first elements, which may be a slice of the batch's pairs; `pair_cols` for
 * the second elements, always every pair of the batch).
 */
function pairSide(flat: Value, name: string, rows: string): { query: Tokens; vision: Tokens } {
  const query = selectInput(flat, `${name}/query`, rows);
  const vision = selectInput(flat, `${name}/vision`, rows);
  return { query, vision };
}

/** `ivrs`, `evrs`, `ivrs_prot` and the hard routing similarities of pairs `<name>/side0|1`. */
function hardRoutingPairs(p: ParamValues, dims: EditorDims, flat: Value, name: string) {
  const s0 = pairSide(flat, `${name}/side0`, "pairs");
  const s1 = pairSide(flat, `${name}/side1`, "pair_cols");
  const ivrs = extractVision(p, "inpt_extractor", dims, s0.query, s0.vision);
  const evrs = extractVision(p, "edit_extractor", dims, s1.query, s1.vision);
  const ivrsProt = extractFromVisprot(p, "inpt_extractor", dims, s0.query);
  return { ivrs, evrs, ivrsProt, ...hardRoutingSim(dims, ivrs, evrs, ivrsProt), s0, s1 };
}

/**
 * Builds the training graph. Inputs: the parameters; `train/reps` `[seqs, seq, d]` (every
 * sequence of the batch, see `packTrainBatch`); the expert selections `edit/query`,
 * `edit/edit` (rows `edits`); per group `<name>/hidden`, `<name>/query` (rows `<name>`) and
 * the expert mask `<name>/moe_mask` (bool `[<name>, edits]`); the pair selections
 * `neib|prot/side0/query|vision` (rows `pairs`) and `neib|prot/side1/query|vision` (rows
 * `pair_cols`: every pair of the batch), with {@linkcode PAIR_ROW_OFFSET} (the batch index of
 * the first `pairs` row); whatever `backboneLoss` declares.
 *
 * Every loss part is a mean over its rows (examples or pairs), so the loss of a batch is the
 * row-weighted mean of the losses of its slices: a replica given the rows `[s, e)` of every
 * group and of the first pair elements (all the experts and second pair elements) computes
 * exactly the terms of those rows.
 */
export function buildTrainingGraph(
  dims: EditorDims,
  weights: LossWeights,
  groups: readonly ExampleGroup[],
  backboneLoss: BackboneLoss,
): TrainingGraph {
  const g = new Graph();
  const p = paramInputs(g, dims);
  const flat = flattenTokens(g.input("train/reps", "f32", ["seqs", "seq", dims.llmMidDim]));
  const sel = (name: string, rows: string): Tokens => selectInput(flat, name, rows);
  const outputs: Record<string, Value> = {};

  // Experts (eqr, C, R) for every request in the batch (evr is not needed in training).
  const eqr = extractQuery(p, "edit_extractor", dims, sel("edit/query", "edits"));
  const editReps = sel("edit/edit", "edits");
  const moeCs = lowRankGenerator(p, "moegen_c", dims, editReps);
  const moeRs = lowRankGenerator(p, "moegen_r", dims, editReps);

  // Reliability, generality and locality: soft-route with iqr over the masked experts.
  const lambda: Record<ExampleKind, number> = {
    rel: weights.relLambda,
    gen: weights.genLambda,
    loc: weights.locLambda,
  };
  let total: Value | null = null;
  const addTerm = (
    v: Value,
    w: number,
  ) => (total = total ? op.add(total, op.mul(v, w)) : op.mul(v, w));
  for (const group of groups) {
    const hidden = sel(`${group.name}/hidden`, group.name).reps;
    const iqr = extractQuery(p, "inpt_extractor", dims, sel(`${group.name}/query`, group.name));
    const mask = g.input(`${group.name}/moe_mask`, "bool", [group.name, "edits"]);
    const { fuseCoe } = softRouting(similarity(dims, iqr, eqr), mask);
    const residual = editResidual(p, hidden, moeCs, moeRs, fuseCoe);
    const loss = backboneLoss(residual, { ...group, graph: g, hidden });
    if (loss.rank !== 0) {
      throw new Error(
        `backbone loss of group '${group.name}' must be a scalar, got ${loss.describe()}`,
      );
    }
    Object.assign(outputs, {
      [`${group.name}/iqr`]: iqr,
      [`${group.name}/fuse_coe`]: fuseCoe,
      [`${group.name}/edit_residual`]: residual,
      [`loss/${group.name}`]: loss,
    });
    addTerm(loss, lambda[group.kind]);
  }

  // Soft routing loss on neighbour pairs: iqr (inpt_extractor) against eqr (edit_extractor).
  const neib = hardRoutingPairs(p, dims, flat, "neib");
  const iqrs = extractQuery(p, "inpt_extractor", dims, neib.s0.query);
  const eqrs = extractQuery(p, "edit_extractor", dims, neib.s1.query);
  const offset = g.input(PAIR_ROW_OFFSET, "i64", []);
  const soft = softRoutingLoss(dims, iqrs, eqrs, offset);
  Object.assign(outputs, {
    "soft/iqrs": iqrs,
    "soft/eqrs": eqrs,
    "soft/rela_sim": soft.relaSim,
    "soft/abs_sim": soft.absSim,
    "soft/abs_pos_sim": soft.absPosSim,
    "soft/abs_neg_sim": soft.absNegSim,
    "soft/loss_rela": soft.lossRela,
    "soft/loss_abs": soft.lossAbs,
    "soft/loss": soft.loss,
  });
  addTerm(soft.loss, weights.softRoutingLambda);

  // Hard routing: neighbour loss -mean log diag, prototype loss -mean log p(prototype).
  const { diag } = diagonalIndices(neib.sim, offset, sizeOf(neib.simRaw, 1));
  const neibLoss = negMeanLog(pick(neib.sim, diag));
  const prot = hardRoutingPairs(p, dims, flat, "prot");
  const protLoss = negMeanLog(
    pick(prot.sim, diagonalIndices(prot.sim, offset, sizeOf(prot.simRaw, 1)).last),
  );
  for (
    const [name, h, loss] of [["hard_neib", neib, neibLoss], ["hard_prot", prot, protLoss]] as const
  ) {
    Object.assign(outputs, {
      [`${name}/ivrs`]: h.ivrs,
      [`${name}/evrs`]: h.evrs,
      [`${name}/sim_raw`]: h.simRaw,
      [`${name}/ivrs_prot`]: h.ivrsProt,
      [`${name}/sim_prot`]: h.simProt,
      [`${name}/sim`]: h.sim,
      [`${name}/loss`]: loss,
    });
  }
  const hard = op.add(neibLoss, protLoss);
  outputs["hard/loss"] = hard;
  addTerm(hard, weights.hardRoutingLambda);
  outputs.total_loss = total!;

  const names = paramSpecs(dims).map((s) => s.name);
  const gs = grad(total!, names.map((n) => p[n]));
  return { graph: g, outputs, grads: Object.fromEntries(names.map((n, i) => [n, gs[i]])) };
}

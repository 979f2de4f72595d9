/**
 * Inference with the expert repository (spec §3) as graph builders: hard routing against the
 * vision prototype, soft routing `softmax · sigmoid`, and the residual
 * `Σ_k w_k relu(x C_kᵀ) R_k` on `x = instant_reps_norm(H)`. Each input of a batch is routed on
 * its own: similarities are one matrix product of the batch against the pool, and masks
 * select the experts, so the number of experts is a dynamic dim.
 *
 * {@linkcode buildRouteGraph} assembles them into one graph over a whole pool given as inputs
 * (the one-pass form: the fixture check and the tests' reference use it; the training losses,
 * `losses.ts`, use the same builders). The editor runs the same equations in two sessions over
 * a segmented pool instead (`pool_graph.ts`): {@linkcode routingQueries} of the input, then the
 * pool's similarities, the experts some input retrieved and {@linkcode retrievedResidual}.
 *
 * @module
 */
import { Graph, type Value } from "../../graph/ir.ts";
import * as op from "../../graph/ops.ts";
import type { EditorDims } from "./config.ts";
import type { AttentionOrder, Tokens } from "./modules.ts";
import {
  extractFromVisprot,
  extractQuery,
  extractVision,
  inferenceOrder,
  instantRepsNorm,
} from "./modules.ts";
import { paramInputs, type ParamValues } from "./params.ts";
import { Tensor } from "../../tensor/tensor.ts";
import type { PoolViews } from "./pool.ts";
import type { Range, Selection } from "./tokens.ts";
import { flattenTokens, selectInput, selectionFeeds } from "./tokens.ts";

/** Added to the similarity of an expert that is routed out before the softmax. */
const ROUTED_OUT = -1e30;

/** The expert pools as graph values (`n` = the dynamic dim `experts`). */
export interface PoolValues {
  /** Editing query representations `[n, e, m]`. */
  readonly eqr: Value;
  /** Editing vision representations `[n, e, m]`. */
  readonly evr: Value;
  /** First factors C `[n, r, d]`. */
  readonly moeCs: Value;
  /** Second factors R `[n, r, d]`. */
  readonly moeRs: Value;
}

/** Declares the pools as inputs `pool/eqr`, `pool/evr`, `pool/moe_cs`, `pool/moe_rs`. */
export function poolInputs(g: Graph, dims: EditorDims, experts = "experts"): PoolValues {
  const { eqeN: e, moduleDim: m, loraRank: r, llmMidDim: d } = dims;
  return {
    eqr: g.input("pool/eqr", "f32", [experts, e, m]),
    evr: g.input("pool/evr", "f32", [experts, e, m]),
    moeCs: g.input("pool/moe_cs", "f32", [experts, r, d]),
    moeRs: g.input("pool/moe_rs", "f32", [experts, r, d]),
  };
}

/**
 * `mean_e(a_{i,e} · b_{k,e}) / sqrt(m)` for every row `a_i` of `a` `[B, e, m]` and every
 * `b_k` of `b` `[n, e, m]` → `[B, n]`.
 */
export function similarity(dims: EditorDims, a: Value, b: Value): Value {
  const em = dims.eqeN * dims.moduleDim;
  const flat = (x: Value) => op.reshape(x, [x.shape[0], em]);
  const scale = 1 / (dims.eqeN * Math.sqrt(dims.moduleDim));
  return op.mul(op.matmul(flat(a), op.transpose(flat(b))), scale);
}

/** `mean_e(a_{i,e} · b_{i,e}) / sqrt(m)` row by row: `[B, e, m]` twice → `[B, 1]`. */
export function pairedSimilarity(dims: EditorDims, a: Value, b: Value): Value {
  const scale = 1 / (dims.eqeN * Math.sqrt(dims.moduleDim));
  return op.mul(op.unsqueeze(op.reduceSum(op.mul(a, b), [1, 2]), [1]), scale);
}

/** What hard routing computes for a batch. */
export interface HardRouting {
  /** `ivr = inpt_extractor.extract_vision(query, vision)` `[B, e, m]`. */
  readonly ivr: Value;
  /** `sim_k` against every expert's `evr` `[B, n]`. */
  readonly visSim: Value;
  /** `prot = inpt_extractor.extract_from_visprot(query)` `[B, e, m]`. */
  readonly ivrProt: Value;
  /** `sim_prot` `[B, 1]`. */
  readonly visSimProt: Value;
  /** `sim_k > sim_prot` (bool `[B, n]`). */
  readonly retrievalMap: Value;
}

/** What routing computes from an input alone, before it meets any expert. */
export interface RoutingQueries {
  /** `ivr = inpt_extractor.extract_vision(query, vision)` `[B, e, m]`. */
  readonly ivr: Value;
  /** `prot = inpt_extractor.extract_from_visprot(query)` `[B, e, m]`. */
  readonly ivrProt: Value;
  /** `sim_prot` `[B, 1]`. */
  readonly visSimProt: Value;
  /** `iqr = inpt_extractor.extract_query(query)` `[B, e, m]`. */
  readonly iqr: Value;
}

/**
 * The input's side of hard and soft routing: `ivr`, the prototype's `prot` and `sim_prot`, and
 * `iqr` (attentions in `order`, default `inferenceOrder(dims)`; see `modules.ts`).
 */
export function routingQueries(
  p: ParamValues,
  dims: EditorDims,
  query: Tokens,
  vision: Tokens,
  order: AttentionOrder = inferenceOrder(dims),
): RoutingQueries {
  const ivr = extractVision(p, "inpt_extractor", dims, query, vision, order);
  const ivrProt = extractFromVisprot(p, "inpt_extractor", dims, query, order);
  const visSimProt = pairedSimilarity(dims, ivr, ivrProt);
  const iqr = extractQuery(p, "inpt_extractor", dims, query, order);
  return { ivr, ivrProt, visSimProt, iqr };
}

/** 1. Hard routing (vision): keep the experts more similar than the vision prototype. */
export function hardRouting(dims: EditorDims, q: RoutingQueries, evrPool: Value): HardRouting {
  const visSim = similarity(dims, q.ivr, evrPool);
  return {
    ivr: q.ivr,
    visSim,
    ivrProt: q.ivrProt,
    visSimProt: q.visSimProt,
    retrievalMap: op.greater(visSim, q.visSimProt),
  };
}

/** What soft routing computes from similarities `t` `[B, n]`. */
export interface SoftRouting {
  /** `softmax_k(t)` over the routed-in experts. */
  readonly relaSim: Value;
  /** `sigmoid(t_k)`. */
  readonly absSim: Value;
  /** `w_k = relaSim · absSim`, 0 for routed-out experts. */
  readonly fuseCoe: Value;
}

/**
 * 2. Soft routing (text): `w_k = softmax_k(t) · sigmoid(t_k)` over the experts where `mask`
 * (bool `[B, n]`) is true, `w_k = 0` elsewhere (every `w` is 0 in a row with no expert).
 * `t` is {@linkcode similarity}`(iqr, eqr)`.
 */
export function softRouting(t: Value, mask: Value | null): SoftRouting {
  const relaSim = op.softmax(mask ? op.where(mask, t, ROUTED_OUT) : t, -1);
  const absSim = op.sigmoid(t);
  const fuse = op.mul(relaSim, absSim);
  return { relaSim, absSim, fuseCoe: mask ? op.where(mask, fuse, 0) : fuse };
}

/**
 * 3. Residual: `x = instant_reps_norm(H)`, `Σ_k w_k relu(x C_kᵀ) R_k` at every position;
 * `hidden` `[B, L, d]`, `moeCs`/`moeRs` `[n, r, d]`, `fuseCoe` `[B, n]` → `[B, L, d]`.
 */
export function editResidual(
  p: ParamValues,
  hidden: Value,
  moeCs: Value,
  moeRs: Value,
  fuseCoe: Value,
): Value {
  const x = instantRepsNorm(p, hidden);
  const act = op.relu(op.einsum("bld,nrd->blnr", x, moeCs));
  return op.einsum("blnr,nrd->bld", op.mul(act, op.unsqueeze(fuseCoe, [1, 3])), moeRs);
}

/** The inference graph and its named outputs. */
export interface RouteGraph {
  /** The graph; inputs are listed in the docs of {@linkcode buildRouteGraph}. */
  readonly graph: Graph;
  /** `hooked_output = H + edit_residual`, the residual and the routing details. */
  readonly outputs: {
    readonly hooked_output: Value;
    readonly edit_residual: Value;
    readonly ivr: Value;
    readonly vis_sim: Value;
    readonly ivr_prot: Value;
    readonly vis_sim_prot: Value;
    readonly retrieval_map: Value;
    readonly iqr: Value;
    readonly fuse_coe: Value;
  };
}

/**
 * The graph applied at the output of layer `l_e` for a batch. Inputs: `hidden` `[batch, seq,
 * d]`; the selections `vision/*` and `query/*` (`tokens.ts`, one row per input); `active`
 * (bool `[batch]`: the input has an image); the pools (`pool/*`); the parameters. Outputs
 * `H + residual`, where inactive rows get no expert and so residual 0. The input's attentions
 * run in `order` (default `inferenceOrder(dims)`).
 */
export function buildRouteGraph(
  dims: EditorDims,
  order: AttentionOrder = inferenceOrder(dims),
): RouteGraph {
  const g = new Graph();
  const p = paramInputs(g, dims);
  const hidden = g.input("hidden", "f32", ["batch", "seq", dims.llmMidDim]);
  const flat = flattenTokens(hidden);
  const vision = selectInput(flat, "vision", "batch");
  const query = selectInput(flat, "query", "batch");
  const active = g.input("active", "bool", ["batch"]);
  const pool = poolInputs(g, dims);

  const queries = routingQueries(p, dims, query, vision, order);
  const hard = hardRouting(dims, queries, pool.evr);
  const iqr = queries.iqr;
  const routed = op.and(hard.retrievalMap, op.unsqueeze(active, [1]));
  const { fuseCoe } = softRouting(similarity(dims, iqr, pool.eqr), routed);
  const residual = editResidual(p, hidden, pool.moeCs, pool.moeRs, fuseCoe);
  return {
    graph: g,
    outputs: {
      hooked_output: op.add(hidden, residual),
      edit_residual: residual,
      ivr: hard.ivr,
      vis_sim: hard.visSim,
      ivr_prot: hard.ivrProt,
      vis_sim_prot: hard.visSimProt,
      retrieval_map: routed,
      iqr,
      fuse_coe: fuseCoe,
    },
  };
}

/** `x` `[a, b·c]` as `[a·b, c]` (a runtime reshape: the dims may be dynamic). */
function splitRows(x: Value, width: number): Value {
  const [a, bc] = x.shape;
  return op.emit("Reshape", [x, op.i64s(x.graph, [-1, width])], {}, x.dtype, [
    `${a}*${typeof bc === "number" ? bc / width : `${bc}/${width}`}`,
    width,
  ]);
}

/**
 * 3. Residual in the form the inference graphs run it: `base + Σ_k w_k relu(x C_kᵀ) R_k` with
 * `x = instant_reps_norm(hidden)` as two matrix products over the flattened tokens, `[B·L, d]`
 * times the `k` experts' C factors `[k·r, d]` transposed (a `Gemm`, which reads them in place),
 * then times the R factors `[k·r, d]`. `hidden` `[B, L, d]`, `moeCs`/`moeRs` `[k, r·d]`,
 * `fuseCoe` `[B, k]` → `[B, L, d]`; `base` is `hidden` unless given (to add the residuals of
 * several groups of experts in turn, each computed on the same `hidden`). (The training graph
 * keeps {@linkcode editResidual}.)
 */
export function retrievedResidual(
  p: ParamValues,
  dims: EditorDims,
  base: Value,
  moeCs: Value,
  moeRs: Value,
  fuseCoe: Value,
  hidden: Value = base,
): Value {
  const { loraRank: r, llmMidDim: d } = dims;
  const x = flattenTokens(instantRepsNorm(p, hidden)); // [B·L, d]
  const act = op.relu(op.gemm(x, splitRows(moeCs, d), null, { transB: true })); // [B·L, k·r]
  const [b, l] = hidden.shape, k = moeCs.shape[0];
  const shape = op.concat(
    [op.dimOf(hidden, 0), op.dimOf(hidden, 1), op.dimOf(moeCs, 0), op.i64s(hidden.graph, [r])],
    0,
  );
  // `allowzero`: with no expert, `k = 0` is a size, not "keep the input's dim"
  const exact = { allowzero: { int: 1 } };
  const act4 = op.emit("Reshape", [act, shape], exact, act.dtype, [b, l, k, r]);
  const weightedAct = op.mul(act4, op.unsqueeze(fuseCoe, [1, 3]));
  const weighted = op.emit("Reshape", [weightedAct, op.shapeOf(act)], exact, act.dtype, act.shape);
  return op.add(base, op.reshapeLike(op.matmul(weighted, splitRows(moeRs, d)), hidden));
}

/**
 * The residual of given experts as a hook of a decode step: declares `pool/moe_cs`,
 * `pool/moe_rs` `[retrieved, r·d]` and `fuse_coe` `[batch, retrieved]` in `hidden`'s graph and
 * returns {@linkcode retrievedResidual}.
 */
export function retrievedResidualInputs(p: ParamValues, dims: EditorDims, hidden: Value): Value {
  const g = hidden.graph, rd = dims.loraRank * dims.llmMidDim;
  const moeCs = g.input("pool/moe_cs", "f32", ["retrieved", rd]);
  const moeRs = g.input("pool/moe_rs", "f32", ["retrieved", rd]);
  const fuseCoe = g.input("fuse_coe", "f32", ["batch", "retrieved"]);
  return retrievedResidual(p, dims, hidden, moeCs, moeRs, fuseCoe);
}

/** Where one input of a routed batch has its image and query. */
export interface RouteInput {
  /** The vision tokens (`vt_range`); null or absent for an input without an image. */
  readonly vision?: Range | null;
  /** End of the query (exclusive; default: the sequence end): the query is `[vision[1], queryEnd)`. */
  readonly queryEnd?: number;
}

/**
 * The feeds of the input side of routing for `hidden` `[B, L, d]` and one {@linkcode RouteInput}
 * per row: `hidden`, the selections `vision/*` and `query/*`, and `active` (bool `[B]`). An
 * input without an image gets a placeholder selection and `active = false`. Errors name the
 * input.
 */
export function queryFeeds(
  hidden: Tensor<"f32">,
  inputs: readonly RouteInput[],
): Record<string, Tensor> {
  const [B, L] = hidden.shape;
  if (inputs.length !== B) {
    throw new Error(
      `route: ${inputs.length} inputs for a batch of ${B} (hidden [${hidden.shape}])`,
    );
  }
  const vision: Selection[] = [], query: Selection[] = [];
  inputs.forEach((x, b) => {
    if (x.vision == null) {
      vision.push({ seq: b, ranges: [[0, 1]] });
      query.push({ seq: b, ranges: [[0, 1]] });
      return;
    }
    const [v0, v1] = x.vision;
    const qEnd = x.queryEnd ?? L;
    if (!(0 <= v0 && v0 < v1 && v1 < qEnd && qEnd <= L)) {
      throw new Error(
        `route: input ${b} needs 0 <= vision start < vision end < queryEnd <= ${L}, ` +
          `got vision [${v0}, ${v1}) and queryEnd ${qEnd}`,
      );
    }
    vision.push({ seq: b, ranges: [[v0, v1]] });
    query.push({ seq: b, ranges: [[v1, qEnd]] });
  });
  return {
    hidden,
    ...selectionFeeds("vision", vision, L),
    ...selectionFeeds("query", query, L),
    active: new Tensor("bool", [B], Uint8Array.from(inputs, (x) => (x.vision == null ? 0 : 1))),
  };
}

/**
 * The feeds of {@linkcode buildRouteGraph} (all but the parameters): {@linkcode queryFeeds}
 * and the whole pool `pool/*` (`[n, e, m]` and `[n, r, d]`).
 */
export function routeFeeds(
  hidden: Tensor<"f32">,
  inputs: readonly RouteInput[],
  pool: PoolViews,
): Record<string, Tensor> {
  return {
    ...queryFeeds(hidden, inputs),
    "pool/eqr": pool.eqr,
    "pool/evr": pool.evr,
    "pool/moe_cs": pool.moeCs,
    "pool/moe_rs": pool.moeRs,
  };
}

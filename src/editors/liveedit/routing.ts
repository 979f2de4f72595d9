/**
 * Inference with the expert repository (spec §3) as graph builders: hard routing against the
 * vision prototype, soft routing `softmax · sigmoid`, and the residual
 * `Σ_k w_k relu(x C_kᵀ) R_k` on `x = instant_reps_norm(H)`. Each input of a batch is routed on
 * its own: similarities are one matrix product of the batch against the whole pool, and
 * masks (not gathers) select the experts, so the number of experts is a dynamic dim.
 *
 * {@linkcode buildRouteGraph} assembles them into one graph after layer `l_e` (the fixture
 * check and the training losses, `losses.ts`, use the same builders). The editor runs it in two
 * parts instead: the routing outputs of {@linkcode buildRouteGraph} against the whole pool (a
 * few products over the `[n, e·m]` blocks), then {@linkcode buildResidualGraph} with only the
 * experts some input retrieved ({@linkcode gatherRetrieved}), so the `[n, r, d]` factors of
 * experts that hard routing rejects cost nothing.
 *
 * @module
 */
import { Graph, type Value } from "../../graph/ir.ts";
import * as op from "../../graph/ops.ts";
import type { EditorDims } from "./config.ts";
import {
  extractFromVisprot,
  extractQuery,
  extractVision,
  instantRepsNorm,
  type Tokens,
} from "./modules.ts";
import { paramInputs, type ParamValues } from "./params.ts";
import { Tensor } from "../../tensor/tensor.ts";
import type { PoolViews } from "./pool.ts";
import {
  flattenTokens,
  type Range,
  selectInput,
  type Selection,
  selectionFeeds,
} from "./tokens.ts";

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

/** 1. Hard routing (vision): keep the experts more similar than the vision prototype. */
export function hardRouting(
  p: ParamValues,
  dims: EditorDims,
  query: Tokens,
  vision: Tokens,
  evrPool: Value,
): HardRouting {
  const ivr = extractVision(p, "inpt_extractor", dims, query, vision);
  const visSim = similarity(dims, ivr, evrPool);
  const ivrProt = extractFromVisprot(p, "inpt_extractor", dims, query);
  const visSimProt = pairedSimilarity(dims, ivr, ivrProt);
  return { ivr, visSim, ivrProt, visSimProt, retrievalMap: op.greater(visSim, visSimProt) };
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
 * `H + residual`, where inactive rows get no expert and so residual 0.
 */
export function buildRouteGraph(dims: EditorDims): RouteGraph {
  const g = new Graph();
  const p = paramInputs(g, dims);
  const hidden = g.input("hidden", "f32", ["batch", "seq", dims.llmMidDim]);
  const flat = flattenTokens(hidden);
  const vision = selectInput(flat, "vision", "batch");
  const query = selectInput(flat, "query", "batch");
  const active = g.input("active", "bool", ["batch"]);
  const pool = poolInputs(g, dims);

  const hard = hardRouting(p, dims, query, vision, pool.evr);
  const iqr = extractQuery(p, "inpt_extractor", dims, query);
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

/**
 * `H + Σ_k w_k relu(x C_kᵀ) R_k` for `hidden` `[batch, seq, d]` over the retrieved experts,
 * declaring their inputs in `hidden`'s graph: `pool/moe_cs` and `pool/moe_rs` `[k, r, d]` and
 * `fuse_coe` `[batch, k]` (fed from {@linkcode gatherRetrieved}); `p` are the parameters.
 */
export function retrievedResidual(p: ParamValues, dims: EditorDims, hidden: Value): Value {
  const g = hidden.graph, { loraRank: r, llmMidDim: d } = dims;
  const moeCs = g.input("pool/moe_cs", "f32", ["retrieved", r, d]);
  const moeRs = g.input("pool/moe_rs", "f32", ["retrieved", r, d]);
  const fuseCoe = g.input("fuse_coe", "f32", ["batch", "retrieved"]);
  return op.add(hidden, editResidual(p, hidden, moeCs, moeRs, fuseCoe));
}

/**
 * The residual half: inputs `hidden` `[batch, seq, d]`, the retrieved experts and their
 * weights ({@linkcode retrievedResidual}), the parameters; output `hooked_output`.
 */
export function buildResidualGraph(dims: EditorDims): { graph: Graph; hooked_output: Value } {
  const g = new Graph();
  const p = paramInputs(g, dims);
  const hidden = g.input("hidden", "f32", ["batch", "seq", dims.llmMidDim]);
  return { graph: g, hooked_output: retrievedResidual(p, dims, hidden) };
}

/** The feeds of {@linkcode retrievedResidual}'s inputs for `retrieved`. */
export function retrievedFeeds(retrieved: Retrieved): Record<string, Tensor> {
  return {
    "pool/moe_cs": retrieved.moeCs,
    "pool/moe_rs": retrieved.moeRs,
    fuse_coe: retrieved.fuseCoe,
  };
}

/** The experts some input retrieved, gathered for {@linkcode buildResidualGraph}. */
export interface Retrieved {
  /** Pool rows of the retrieved experts, ascending. */
  readonly rows: readonly number[];
  /** Their C factors `[k, r, d]`. */
  readonly moeCs: Tensor<"f32">;
  /** Their R factors `[k, r, d]`. */
  readonly moeRs: Tensor<"f32">;
  /** The weights of those experts per input `[B, k]`. */
  readonly fuseCoe: Tensor<"f32">;
}

/**
 * Gathers the experts with a non-zero weight for any input (`fuseCoe` `[B, n]` over the pool)
 * from the pool's factors; experts no input uses are left out, which changes no sum.
 */
export function gatherRetrieved(pool: PoolViews, fuseCoe: Tensor<"f32">): Retrieved {
  const [B, n] = fuseCoe.shape;
  const w = fuseCoe.data;
  const rows: number[] = [];
  for (let j = 0; j < n; j++) {
    for (let b = 0; b < B; b++) {
      if (w[b * n + j] !== 0) {
        rows.push(j);
        break;
      }
    }
  }
  const [, r, d] = pool.moeCs.shape;
  const take = (src: Float32Array) => {
    const out = new Float32Array(rows.length * r * d);
    rows.forEach((j, i) => out.set(src.subarray(j * r * d, (j + 1) * r * d), i * r * d));
    return new Tensor("f32", [rows.length, r, d], out);
  };
  const coe = new Float32Array(B * rows.length);
  for (let b = 0; b < B; b++) rows.forEach((j, i) => (coe[b * rows.length + i] = w[b * n + j]));
  return {
    rows,
    moeCs: take(pool.moeCs.data),
    moeRs: take(pool.moeRs.data),
    fuseCoe: new Tensor("f32", [B, rows.length], coe),
  };
}

/** Where one input of a routed batch has its image and query. */
export interface RouteInput {
  /** The vision tokens (`vt_range`); null or absent for an input without an image. */
  readonly vision?: Range | null;
  /** End of the query (exclusive; default: the sequence end): the query is `[vision[1], queryEnd)`. */
  readonly queryEnd?: number;
}

/**
 * The feeds of {@linkcode buildRouteGraph} (all but the parameters) for `hidden` `[B, L, d]`,
 * one {@linkcode RouteInput} per row, and the pools. An input without an image gets a
 * placeholder selection and `active = false`. Errors name the input.
 */
export function routeFeeds(
  hidden: Tensor<"f32">,
  inputs: readonly RouteInput[],
  pool: PoolViews,
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
    "pool/eqr": pool.eqr,
    "pool/evr": pool.evr,
    "pool/moe_cs": pool.moeCs,
    "pool/moe_rs": pool.moeRs,
  };
}

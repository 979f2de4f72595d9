/**
 * Routing over a segmented pool (spec §3) as the editor runs it, in two sessions:
 *
 * 1. {@linkcode buildQueryGraph}, the input's side, over the editor's weights (initializers):
 *    `ivr`, `iqr` `[B, e·m]` and `sim_prot` `[B, 1]` (`+∞` for an input without an image, so
 *    that no expert passes).
 * 2. {@linkcode buildPoolGraph}, over the experts: every sealed segment's `eqr`, `evr`, C and R
 *    are initializers in the segment's file (memory-mapped; a segment with undone experts
 *    carries a constant `live` mask), the tail's are fed. Per part, hard routing is one product
 *    `evr · ivrᵀ` `[n, B]` compared with `sim_prot`; the rows some input keeps are picked
 *    (`NonZero` + `Gather`: only their bytes are read) and scored `iqr · eqrᵀ`; soft routing
 *    runs once over every part's scores, and the residual part by part on the picked C and R
 *    (`retrievedResidual`), so the picked factors are never copied again. That is the one-pass
 *    computation of `buildRouteGraph` over the concatenated pool: experts no input keeps have
 *    weight 0 there and add nothing.
 *
 * A run is fed the batch's hidden states, the features of step 1 and the tail: never the
 * sealed experts, however many there are. {@linkcode mergeRouting} turns the outputs into the
 * retrieval map and weights over the pool's live experts.
 *
 * @module
 */
import { Graph, type Value } from "../../graph/ir.ts";
import * as op from "../../graph/ops.ts";
import type { TracedGraph } from "../../graph/runner.ts";
import type { ExternalData } from "../../graph/ir.ts";
import { Tensor } from "../../tensor/tensor.ts";
import type { EditorDims } from "./config.ts";
import { paramExternals, type ParamFile } from "./param_file.ts";
import { type EditorParams, paramInputs } from "./params.ts";
import { retrievedResidual, routingQueries, softRouting } from "./routing.ts";
import type { SegmentPart } from "./segment.ts";
import { flattenTokens, selectInput } from "./tokens.ts";

/**
 * The input side of routing. Inputs: `hidden` `[batch, seq, d]`, the selections `vision/*`
 * and `query/*` and `active` (`queryFeeds` of `routing.ts`), and the parameters unless `params`
 * gives their file (then they are initializers). Outputs `ivr`, `iqr` `[batch, e·m]`,
 * `sim_prot` `[batch, 1]`.
 */
export function buildQueryGraph(dims: EditorDims, params: ParamFile | null): TracedGraph {
  const g = new Graph();
  const p = params ? paramExternals(g, dims, params) : paramInputs(g, dims);
  const flat = flattenTokens(g.input("hidden", "f32", ["batch", "seq", dims.llmMidDim]));
  const q = routingQueries(
    p,
    dims,
    selectInput(flat, "query", "batch"),
    selectInput(flat, "vision", "batch"),
  );
  const active = g.input("active", "bool", ["batch"]);
  const em = dims.eqeN * dims.moduleDim;
  return {
    graph: g,
    outputs: {
      ivr: op.reshape(q.ivr, ["batch", em]),
      iqr: op.reshape(q.iqr, ["batch", em]),
      sim_prot: op.where(op.unsqueeze(active, [1]), q.visSimProt, Infinity),
    },
  };
}

/** A sealed segment as the pool graph sees it. */
export interface SegmentLayout {
  /** Rows (experts written, undone or not). */
  readonly size: number;
  /** Where each part's bytes are. */
  readonly parts: Readonly<Record<SegmentPart, ExternalData>>;
  /** `live` flags `[size]` when some row is undone, else null. */
  readonly live: Uint8Array | null;
}

/** The pool graph's part for one group of experts. */
interface Part {
  readonly eqr: Value;
  readonly evr: Value;
  readonly moeCs: Value;
  readonly moeRs: Value;
  readonly live: Value | null;
}

/** The outputs of the pool graph that a route asks for. */
export const POOL_OUTPUTS = ["hooked_output", "keep", "fuse_coe"] as const;

/**
 * The experts' side of routing over `segments` (initializers) and a fed tail. Inputs: `ivr`,
 * `iqr` `[batch, e·m]`, `sim_prot` `[batch, 1]` (step 1), `hidden` `[batch, seq, d]`, and the
 * tail `tail/eqr`, `tail/evr` `[tail, e·m]`, `tail/moe_cs`, `tail/moe_rs` `[tail, r·d]`.
 * `instant_reps_norm`'s weight and bias (`d` floats each) are embedded. Outputs:
 * `hooked_output` `[batch, seq, d]`; `keep` (bool `[slots, batch]`: every segment row, then
 * every tail row, kept by which input); `fuse_coe` `[batch, retrieved]`: the weights of the
 * retrieved experts (the slots some input keeps, in slot order).
 */
export function buildPoolGraph(
  dims: EditorDims,
  segments: readonly SegmentLayout[],
  params: EditorParams,
): TracedGraph {
  const g = new Graph();
  const { eqeN: e, moduleDim: m, loraRank: r, llmMidDim: d } = dims;
  const em = e * m, rd = r * d;
  const ivr = g.input("ivr", "f32", ["batch", em]);
  const iqr = g.input("iqr", "f32", ["batch", em]);
  const simProt = g.input("sim_prot", "f32", ["batch", 1]);
  const hidden = g.input("hidden", "f32", ["batch", "seq", d]);
  const norm = {
    "instant_reps_norm.weight": g.constant(params["instant_reps_norm.weight"]),
    "instant_reps_norm.bias": g.constant(params["instant_reps_norm.bias"]),
  };
  const parts: Part[] = segments.map((s, j) => {
    const ext = (k: SegmentPart, width: number) =>
      g.external(`segment${j}/${k}`, "f32", [s.size, width], s.parts[k]);
    return {
      eqr: ext("eqr", em),
      evr: ext("evr", em),
      moeCs: ext("moe_cs", rd),
      moeRs: ext("moe_rs", rd),
      live: s.live && g.constant(new Tensor("bool", [s.size], s.live)),
    };
  });
  parts.push({
    eqr: g.input("tail/eqr", "f32", ["tail", em]),
    evr: g.input("tail/evr", "f32", ["tail", em]),
    moeCs: g.input("tail/moe_cs", "f32", ["tail", rd]),
    moeRs: g.input("tail/moe_rs", "f32", ["tail", rd]),
    live: null,
  });

  const scale = 1 / (e * Math.sqrt(m));
  const simProtT = op.transpose(simProt);
  const keeps: Value[] = [];
  const picked = parts.map((part, j) => {
    // 1. hard routing of this part: [n, batch] (an Einsum: for one input, ONNX Runtime runs it
    // as a matrix-vector product that streams `evr` at twice the speed of MatMul's)
    const sims = op.einsum("ne,be->nb", part.evr, ivr);
    let keep = op.greater(op.mul(sims, scale), simProtT);
    if (part.live) keep = op.and(keep, op.unsqueeze(part.live, [1]));
    keeps.push(keep);
    const any = op.greater(op.reduceMax(op.cast(keep, "f32"), [1]), 0);
    const pick = (x: Value) => op.compress(x, any, 0, `picked${j}`);
    const eqr = pick(part.eqr);
    return {
      t: op.mul(op.matmul(iqr, op.transpose(eqr)), scale), // [batch, k_j]
      mask: op.transpose(pick(keep)), // [batch, k_j]
      moeCs: pick(part.moeCs),
      moeRs: pick(part.moeRs),
    };
  });
  // 2. soft routing over every part's picked experts at once (small [batch, k] matrices), each
  // input over the ones it kept; the weights go back to their parts
  const cat = (xs: Value[]) => (xs.length === 1 ? xs[0] : op.concat(xs, 1));
  const { fuseCoe } = softRouting(cat(picked.map((x) => x.t)), cat(picked.map((x) => x.mask)));
  const sizes = op.concat(picked.map((x) => op.dimOf(x.t, 1)), 0);
  const weights = picked.length === 1 ? [fuseCoe] : g.node(
    "Split",
    [fuseCoe, sizes],
    { axis: { int: 1 } },
    picked.map((x) => ({ dtype: "f32", shape: x.t.shape })),
  );
  // 3. the residual, part by part (the picked factors are never concatenated)
  let hooked = hidden;
  picked.forEach((x, j) => {
    hooked = retrievedResidual(norm, dims, hooked, x.moeCs, x.moeRs, weights[j], hidden);
  });
  return {
    graph: g,
    outputs: {
      hooked_output: hooked,
      keep: keeps.length === 1 ? keeps[0] : op.concat(keeps, 0),
      fuse_coe: fuseCoe,
    },
  };
}

/**
 * The retrieval map and weights over the pool's live experts from a pool graph's `keep`
 * (bool `[slots, B]`) and `fuse_coe` (`[B, k]`, the kept slots in order); `columns[s]` is the
 * column of slot `s` (-1 for an undone expert's slot), `n` the number of live experts.
 */
export function mergeRouting(
  keep: Tensor<"bool">,
  fuseCoe: Tensor<"f32">,
  columns: Int32Array,
  n: number,
): { retrievalMap: Tensor<"bool">; fuseCoe: Tensor<"f32"> } {
  const [slots, B] = keep.shape, k = fuseCoe.shape[1];
  if (slots !== columns.length) {
    throw new Error(`mergeRouting: ${slots} slots in 'keep' for ${columns.length} columns`);
  }
  const map = new Uint8Array(B * n), w = new Float32Array(B * n);
  const kept = keep.data, fuse = fuseCoe.data;
  let j = 0;
  for (let s = 0; s < slots; s++) {
    let any = false;
    for (let b = 0; b < B; b++) any ||= kept[s * B + b] !== 0;
    if (!any) continue;
    const c = columns[s];
    if (c < 0) throw new Error(`mergeRouting: slot ${s} is an undone expert but was kept`);
    for (let b = 0; b < B; b++) {
      map[b * n + c] = kept[s * B + b];
      w[b * n + c] = fuse[b * k + j];
    }
    j++;
  }
  if (j !== k) throw new Error(`mergeRouting: ${j} kept slots for ${k} weights`);
  return {
    retrievalMap: new Tensor("bool", [B, n], map),
    fuseCoe: new Tensor("f32", [B, n], w),
  };
}

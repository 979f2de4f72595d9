/**
 * The editor's building blocks (spec §1) as graph builders: Attention, QVExtractor
 * (`extract_vision`, `extract_query`, `extract_from_visprot`), LowRankGenerator and
 * `instant_reps_norm`. Parameters are graph values named by the authors' state-dict keys
 * (`params.ts`); `name` is the module prefix, e.g. `"inpt_extractor"`.
 *
 * Every builder works on a batch: token sequences come as {@linkcode Tokens}, a padded
 * `[k, T, d]` tensor with an additive key mask, so `k` requests of different lengths run in
 * one pass and each row equals the authors' batch-size-1 computation.
 *
 * @module
 */
import type { Value } from "../../graph/ir.ts";
import * as op from "../../graph/ops.ts";
import { mergeHeads, splitHeads } from "../../models/attention.ts";
import type { EditorDims } from "./config.ts";
import { param, type ParamValues } from "./params.ts";

/** Eps of every LayerNorm of the editor (PyTorch's default). */
export const LAYER_NORM_EPS = 1e-5;

/**
 * A batch of token sequences: `reps` `[k, T, d]` and an additive key mask `[k, 1, 1, T]`
 * (0 keeps a token, a large negative number drops a padding slot), or `null` when every
 * token is real.
 */
export interface Tokens {
  /** Representations, `[k, T, d]`. */
  readonly reps: Value;
  /** Additive key mask, `[k, 1, 1, T]`, or null. */
  readonly mask: Value | null;
}

/** `nn.Linear` `name` applied to `x`: `x Wᵀ + b`. */
function linear(p: ParamValues, name: string, x: Value): Value {
  return op.linear(x, param(p, `${name}.weight`), param(p, `${name}.bias`));
}

/** `nn.LayerNorm` `name` applied to every token of `t`. */
function layerNorm(p: ParamValues, name: string, t: Tokens): Tokens {
  const reps = op.layerNorm(
    t.reps,
    param(p, `${name}.weight`),
    param(p, `${name}.bias`),
    LAYER_NORM_EPS,
  );
  return { reps, mask: t.mask };
}

/**
 * Attention(q_in, kv_in), cross attention without output projection:
 * `q = Wq q_in + bq`, `k = Wk kv + bk`, `v = Wv kv + bv` split into `heads` heads,
 * `softmax(q kᵀ / sqrt(dq/h))` over keys, weighted sum of `v`, heads concatenated.
 * With `rescaleWithScore` each head's result is divided by `sqrt(Σ_keys score²)` (the
 * authors' variance-restoring variant). `qIn` `[1 or k, l, m]` broadcasts against `kv`.
 */
export function attention(
  p: ParamValues,
  name: string,
  qIn: Value,
  kv: Tokens,
  heads: number,
  rescaleWithScore = false,
): Value {
  const q = splitHeads(linear(p, `${name}.q_mlp`, qIn), heads); // [b, h, l, dq]
  const k = splitHeads(linear(p, `${name}.k_mlp`, kv.reps), heads); // [k, h, T, dq]
  const v = splitHeads(linear(p, `${name}.v_mlp`, kv.reps), heads); // [k, h, T, dv]
  const dq = q.shape[3] as number;
  let scores = op.mul(op.matmul(q, op.transposeLast(k)), 1 / Math.sqrt(dq));
  if (kv.mask) scores = op.add(scores, kv.mask);
  const s = op.softmax(scores, -1); // [k, h, l, T]
  let res = op.matmul(s, v); // [k, h, l, dv]
  if (rescaleWithScore) res = op.div(res, op.sqrt(op.reduceSum(op.mul(s, s), [-1], true)));
  return mergeHeads(res); // [k, l, h·dv]
}

/**
 * QVExtractor.extract_vision(query, vision): LayerNorm1 on both inputs,
 * `a = Att_q1(eqe1, LN1(query))`, `evr = Att_vis(a, LN1(vision))` → `[k, e, m]`.
 */
export function extractVision(
  p: ParamValues,
  name: string,
  dims: EditorDims,
  query: Tokens,
  vision: Tokens,
): Value {
  const ln = (t: Tokens) => layerNorm(p, `${name}.layer_norm1`, t);
  const h = dims.crossAttHeadN;
  const a = attention(p, `${name}.ca_query_info_ext1`, param(p, `${name}.eqe1`), ln(query), h);
  return attention(p, `${name}.ca_vision_info_ext`, a, ln(vision), h);
}

/** QVExtractor.extract_query(query): `eqr = Att_q2(eqe2, LN2(query))` → `[k, e, m]`. */
export function extractQuery(p: ParamValues, name: string, dims: EditorDims, query: Tokens): Value {
  const q = layerNorm(p, `${name}.layer_norm2`, query);
  return attention(
    p,
    `${name}.ca_query_info_ext2`,
    param(p, `${name}.eqe2`),
    q,
    dims.crossAttHeadN,
  );
}

/**
 * QVExtractor.extract_from_visprot(query) (`inpt_extractor` only):
 * `extract_vision(query, P)` with the learned vision prototype `P = vis_rep_prot` `[1, n_v, d]`.
 */
export function extractFromVisprot(
  p: ParamValues,
  name: string,
  dims: EditorDims,
  query: Tokens,
): Value {
  return extractVision(p, name, dims, query, {
    reps: param(p, `${name}.vis_rep_prot`),
    mask: null,
  });
}

/**
 * LowRankGenerator(edit_reps): `Att_lora(phi, LN(edit_reps)) · 1/(s·sqrt(r))` → `[k, r, d]`
 * (`moegen_c` gives an expert's C, `moegen_r` its R).
 */
export function lowRankGenerator(
  p: ParamValues,
  name: string,
  dims: EditorDims,
  editReps: Tokens,
): Value {
  const x = layerNorm(p, `${name}.layer_norm`, editReps);
  const lora = attention(p, `${name}.ca_lora`, param(p, `${name}.phi`), x, dims.crossAttHeadN);
  return op.mul(lora, 1 / (dims.loraScale * Math.sqrt(dims.loraRank)));
}

/** instant_reps_norm(H): the LayerNorm(d) applied to the hidden states before the experts. */
export function instantRepsNorm(p: ParamValues, hidden: Value): Value {
  return layerNorm(p, "instant_reps_norm", { reps: hidden, mask: null }).reps;
}

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
import type { Dim, Value } from "../../graph/ir.ts";
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
 * The order in which an attention is evaluated; both compute the same function (up to float
 * rounding):
 * - `"keys"`: project every key and value token (`k = Wk kv + bk`, `v = Wv kv + bv`), then
 *   `softmax(q kᵀ) v` — the authors' order, used in training;
 * - `"queries"`: fold each head's query into the key weights first (`q_h Wk_h`, `[l, d]`),
 *   score the raw tokens against it, weight the raw tokens, and project the `l` weighted
 *   sums: `softmax(q_h Wk_h kvᵀ) kv Wv_hᵀ + bv_h`. The key bias only shifts every score of a
 *   row by `q_h·bk_h`, which softmax ignores, and the value bias passes through because the
 *   weights sum to 1. With `l` queries (e or r, 4) and `T` tokens this costs `O(l·d·m)`
 *   instead of `O(T·d·m)`, and a constant query's `q_h Wk_h` is folded once when the weights
 *   are initializers. The inference graphs (editing, routing) use it for large weights
 *   ({@linkcode inferenceOrder}).
 */
export type AttentionOrder = "keys" | "queries";

/**
 * The signature the token-sequence modules share: the editor's parameters, the module's name
 * prefix, the editor dims, the input tokens and the attention order (default `"keys"`).
 */
export type TokensModule = (
  p: ParamValues,
  name: string,
  dims: EditorDims,
  tokens: Tokens,
  order?: AttentionOrder,
) => Value;

/**
 * The smallest `d·m` (elements of a key or value weight) for which the inference graphs use
 * the `"queries"` order. Below it the weights are small enough that both orders cost little
 * arithmetic and the per-node overhead of the `"queries"` order's per-head products dominates
 * (make-tiny backbones: `d·m` = 2048); BLIP-2 has 2 621 440.
 */
export const QUERIES_FIRST_MIN_WEIGHT = 1 << 16;

/** The order of the inference graphs' attentions for `dims` (see {@linkcode QUERIES_FIRST_MIN_WEIGHT}). */
export function inferenceOrder(dims: EditorDims): AttentionOrder {
  return dims.llmMidDim * dims.moduleDim >= QUERIES_FIRST_MIN_WEIGHT ? "queries" : "keys";
}

/**
 * Attention(q_in, kv_in), cross attention without output projection:
 * `q = Wq q_in + bq`, `k = Wk kv + bk`, `v = Wv kv + bv` split into `heads` heads,
 * `softmax(q kᵀ / sqrt(dq/h))` over keys, weighted sum of `v`, heads concatenated.
 * With `rescaleWithScore` each head's result is divided by `sqrt(Σ_keys score²)` (the
 * authors' variance-restoring variant). `qIn` `[1 or k, l, m]` broadcasts against `kv`;
 * `order` picks the evaluation order ({@linkcode AttentionOrder}, default `"keys"`).
 */
export function attention(
  p: ParamValues,
  name: string,
  qIn: Value,
  kv: Tokens,
  heads: number,
  rescaleWithScore = false,
  order: AttentionOrder = "keys",
): Value {
  const q = splitHeads(linear(p, `${name}.q_mlp`, qIn), heads); // [b, h, l, dq]
  const dq = q.shape[3] as number;
  let s: Value, res: Value;
  if (order === "keys") {
    const k = splitHeads(linear(p, `${name}.k_mlp`, kv.reps), heads); // [k, h, T, dq]
    const v = splitHeads(linear(p, `${name}.v_mlp`, kv.reps), heads); // [k, h, T, dv]
    let scores = op.mul(op.matmul(q, op.transposeLast(k)), 1 / Math.sqrt(dq));
    if (kv.mask) scores = op.add(scores, kv.mask);
    s = op.softmax(scores, -1); // [k, h, l, T]
    res = op.matmul(s, v); // [k, h, l, dv]
  } else {
    ({ s, res } = queriesFirst(p, name, q, kv, heads));
  }
  if (rescaleWithScore) res = op.div(res, op.sqrt(op.reduceSum(op.mul(s, s), [-1], true)));
  return mergeHeads(res); // [k, l, h·dv]
}

/** The `"queries"` order of {@linkcode attention}: the scores `s` and the heads' results. */
function queriesFirst(
  p: ParamValues,
  name: string,
  q: Value,
  kv: Tokens,
  heads: number,
): { s: Value; res: Value } {
  const [b, , l, dq] = q.shape as [Dim, number, number, number];
  const wk = param(p, `${name}.k_mlp.weight`); // [h·dq, d]
  const wv = param(p, `${name}.v_mlp.weight`); // [h·dv, d]
  const d = wk.shape[1] as number, dv = (wv.shape[0] as number) / heads;
  const x = kv.reps; // [k, T, d]
  // Per head, a product with that head's rows of a weight matrix: each is a 2-D right operand,
  // which ONNX Runtime prepacks once (a batched product over a [h, ·, ·] weight is not).
  const perHead = (a: Value, w: Value, rows: number, transposed: boolean) =>
    op.concat(
      Array.from({ length: heads }, (_, h) => {
        const wh = op.slice(w, [h * rows], [(h + 1) * rows], [0]);
        return op.matmul(op.slice(a, [h], [h + 1], [1]), transposed ? op.transpose(wh) : wh);
      }),
      1,
    );
  // q_h Wk_h, scaled: [b, h, l, d]
  const qk = op.mul(perHead(q, wk, dq, false), 1 / Math.sqrt(dq));
  // scores against the raw tokens: [k, T, h·l], then [k, h, l, T]
  const scoresT = b === 1
    ? op.matmul(x, op.transpose(op.reshape(qk, [heads * l, d])))
    : op.matmul(x, op.transposeLast(op.reshape(qk, [b, heads * l, d])));
  const [k, T] = x.shape;
  let scores = op.reshape(op.transpose(scoresT, [0, 2, 1]), [k, heads, l, T]);
  if (kv.mask) scores = op.add(scores, kv.mask);
  const s = op.softmax(scores, -1);
  // the weighted tokens [k, h, l, d], then each head's value projection and bias
  const sx = op.reshape(op.matmul(op.reshape(s, [k, heads * l, T]), x), [k, heads, l, d]);
  const bv = op.reshape(param(p, `${name}.v_mlp.bias`), [heads, 1, dv]);
  return { s, res: op.add(perHead(sx, wv, dv, true), bv) };
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
  order: AttentionOrder = "keys",
): Value {
  const ln = (t: Tokens) => layerNorm(p, `${name}.layer_norm1`, t);
  const h = dims.crossAttHeadN;
  const eqe1 = param(p, `${name}.eqe1`);
  const a = attention(p, `${name}.ca_query_info_ext1`, eqe1, ln(query), h, false, order);
  return attention(p, `${name}.ca_vision_info_ext`, a, ln(vision), h, false, order);
}

/** QVExtractor.extract_query(query): `eqr = Att_q2(eqe2, LN2(query))` → `[k, e, m]`. */
export const extractQuery: TokensModule = (p, name, dims, query, order = "keys") => {
  const q = layerNorm(p, `${name}.layer_norm2`, query);
  const eqe2 = param(p, `${name}.eqe2`);
  return attention(p, `${name}.ca_query_info_ext2`, eqe2, q, dims.crossAttHeadN, false, order);
};

/**
 * QVExtractor.extract_from_visprot(query) (`inpt_extractor` only):
 * `extract_vision(query, P)` with the learned vision prototype `P = vis_rep_prot` `[1, n_v, d]`.
 * In the `"queries"` order the prototype's own attention stays in the `"keys"` order: its keys
 * and values are constant, so they fold once when the weights are initializers.
 */
export const extractFromVisprot: TokensModule = (p, name, dims, query, order = "keys") => {
  const ln = (t: Tokens) => layerNorm(p, `${name}.layer_norm1`, t);
  const h = dims.crossAttHeadN, eqe1 = param(p, `${name}.eqe1`);
  const prot = { reps: param(p, `${name}.vis_rep_prot`), mask: null };
  const a = attention(p, `${name}.ca_query_info_ext1`, eqe1, ln(query), h, false, order);
  return attention(p, `${name}.ca_vision_info_ext`, a, ln(prot), h);
};

/**
 * LowRankGenerator(edit_reps): `Att_lora(phi, LN(edit_reps)) · 1/(s·sqrt(r))` → `[k, r, d]`
 * (`moegen_c` gives an expert's C, `moegen_r` its R).
 */
export const lowRankGenerator: TokensModule = (p, name, dims, editReps, order = "keys") => {
  const x = layerNorm(p, `${name}.layer_norm`, editReps);
  const phi = param(p, `${name}.phi`);
  const lora = attention(p, `${name}.ca_lora`, phi, x, dims.crossAttHeadN, false, order);
  return op.mul(lora, 1 / (dims.loraScale * Math.sqrt(dims.loraRank)));
};

/** instant_reps_norm(H): the LayerNorm(d) applied to the hidden states before the experts. */
export function instantRepsNorm(p: ParamValues, hidden: Value): Value {
  return layerNorm(p, "instant_reps_norm", { reps: hidden, mask: null }).reps;
}

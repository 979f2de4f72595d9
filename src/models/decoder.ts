/**
 * The causal language-model decoders (OPT in `opt.ts`, LLaMA in `llama.ts`) behind one
 * interface, {@linkcode CausalDecoder}, cut at layer boundaries so that a caller can
 *
 * - read the hidden states at the output of layer `l`: `begin` + `layer(0..l)`;
 * - continue from the output of layer `l` plus a residual: `resume(H + residual)` +
 *   `layer(l+1..)` + `head`, a graph that `grad` differentiates with respect to the residual;
 * - split the model into stages of contiguous layers ({@linkcode runLayers});
 * - decode greedily with a KV cache ({@linkcode buildDecodeStep}).
 *
 * Shapes: hidden states `[b, q, d]`; the attention mask is int64 `[b, k]` over the whole
 * sequence (1 = token, 0 = padding), where `k = past + q` and `past` is the length of the KV
 * cache (0 without one). Query `i` sits at sequence position `k - q + i` and sees key `j` when
 * `j <= k - q + i` and `mask[j] = 1`. Cached keys and values are `[b, kv_heads, past, head_dim]`
 * (after rotary embeddings, as HF caches them).
 *
 * This file also holds what both architectures share: the state at a layer boundary
 * ({@linkcode decoderState}), attention over the cache ({@linkcode cachedAttention}), stages
 * ({@linkcode runLayers}) and the decode-step graph.
 *
 * @module
 */
import { Graph, type Value } from "../graph/ir.ts";
import * as op from "../graph/ops.ts";
import type { TracedGraph } from "../graph/runner.ts";
import { openModelDir } from "../io/model_dir.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { attendHeads, maskMin, mergeHeads } from "./attention.ts";
import { ConfigFields } from "./hf_config.ts";
import { type ComputeDType, WeightStore } from "./weights.ts";

/** The architectures of {@linkcode CausalDecoder}. */
export type DecoderType = "opt" | "llama";

/** What every decoder's config has; `OptConfig` and `LlamaConfig` add their own fields. */
export interface DecoderConfig {
  /** `model_type` of the Hugging Face config. */
  readonly modelType: DecoderType;
  /** `vocab_size`. */
  readonly vocabSize: number;
  /** `hidden_size` (the width `d` of hidden states). */
  readonly hiddenSize: number;
  /** `num_hidden_layers`. */
  readonly numLayers: number;
  /** `num_attention_heads` (query heads). */
  readonly numHeads: number;
  /** `num_key_value_heads` (= `numHeads` unless the model uses grouped-query attention). */
  readonly numKvHeads: number;
  /** Width of one head. */
  readonly headDim: number;
  /** `max_position_embeddings`. */
  readonly maxPositions: number;
  /** `tie_word_embeddings`: the LM head is `embed_tokens.weight`. */
  readonly tieWordEmbeddings: boolean;
}

/** Keys and values of one layer, `[b, kv_heads, s, head_dim]`. */
export interface KeyValue {
  /** Keys (rotary embeddings applied where the architecture has them). */
  readonly key: Value;
  /** Values. */
  readonly value: Value;
}

/** Rotary-embedding tables for the queries of a graph, `[q, head_dim]` each. */
export interface Rotary {
  /** `cos(position · inv_freq)`, the frequencies repeated over both halves of a head. */
  readonly cos: Value;
  /** `sin(position · inv_freq)`, likewise. */
  readonly sin: Value;
}

/**
 * The state at a layer boundary: the hidden states and the per-graph context every layer
 * reads (computed once by `begin`/`resume`, shared by all layers).
 */
export interface DecoderState {
  /** Hidden states `[b, q, d]`. */
  readonly hidden: Value;
  /** int64 `[b, k]`, the mask of the whole sequence (cache included). */
  readonly attentionMask: Value;
  /** int64 `[q]`: the sequence position of each query, `k - q … k - 1`. */
  readonly positions: Value;
  /**
   * Additive attention mask `[b, 1, q, k]` in the dtype of the hidden states: 0 where visible,
   * that dtype's most negative finite value ({@linkcode maskMin}) elsewhere.
   */
  readonly bias: Value;
  /** Rotary tables (LLaMA); absent for learned positions (OPT). */
  readonly rotary?: Rotary;
  /** The KV cache per layer, when the graph decodes with one. */
  readonly past?: readonly KeyValue[];
  /** Keys and values (cache included) of each layer run so far, by layer index. */
  readonly present: readonly (KeyValue | undefined)[];
}

/** Options of {@linkcode CausalDecoder.begin} and {@linkcode CausalDecoder.resume}. */
export interface BeginOptions {
  /** The KV cache of every layer the graph will run (`[b, kv_heads, past, head_dim]`). */
  readonly past?: readonly KeyValue[];
}

/** A decoder-only language model cut at its layer boundaries. */
export interface CausalDecoder {
  /** The parsed config. */
  readonly config: DecoderConfig;
  /** Dtype the graphs compute in (hidden states, logits). */
  readonly dtype: ComputeDType;
  /** Token embeddings `[b, s, d]` of int64 `inputIds` `[b, s]` (no positions added). */
  embedTokens(g: Graph, inputIds: Value): Value;
  /**
   * The state before layer 0 for input embeddings `[b, q, d]` (token embeddings, possibly with
   * vision tokens concatenated): adds what the architecture adds to embeddings (OPT: learned
   * positions) and prepares the per-layer context (mask, rotary tables).
   */
  begin(g: Graph, inputsEmbeds: Value, attentionMask: Value, options?: BeginOptions): DecoderState;
  /**
   * The state at a layer boundary for hidden states taken there (e.g. the output of layer `l`
   * plus a residual): the same context as `begin`, nothing added to `hidden`.
   */
  resume(g: Graph, hidden: Value, attentionMask: Value, options?: BeginOptions): DecoderState;
  /** Decoder layer `i` (0-based). */
  layer(i: number, state: DecoderState): DecoderState;
  /** The final norm (HF's last `hidden_states` entry). */
  finalNorm(hidden: Value): Value;
  /** Final norm and LM head: logits `[b, q, vocab]`. */
  head(g: Graph, hidden: Value): Value;
}

function squeezed(v: Value): Value {
  return op.squeeze(v, [0]);
}

/**
 * The state at a layer boundary for `hidden` `[b, q, d]` and the whole sequence's
 * `attentionMask` `[b, k]`: query positions `k - q … k - 1` and the causal-plus-padding bias
 * (in `hidden`'s dtype). `begin`/`resume` of each architecture build on it.
 */
export function decoderState(
  hidden: Value,
  attentionMask: Value,
  options: BeginOptions = {},
): DecoderState {
  if (hidden.rank !== 3) {
    throw new Error(`decoder: hidden states must be [b, q, d], got ${hidden.describe()}`);
  }
  if (attentionMask.rank !== 2 || attentionMask.dtype !== "i64") {
    throw new Error(
      `decoder: the attention mask must be int64 [b, k], got ${attentionMask.describe()}`,
    );
  }
  const g = hidden.graph;
  const total = squeezed(op.dimOf(attentionMask, 1));
  const queries = squeezed(op.dimOf(hidden, 1));
  const one = op.scalar(g, "i64", 1);
  const positions = op.range(op.sub(total, queries), total, one, hidden.shape[1]);
  const keys = op.range(op.scalar(g, "i64", 0), total, one, attentionMask.shape[1]);
  const causal = op.lessOrEqual(op.unsqueeze(keys, [0]), op.unsqueeze(positions, [1])); // [q, k]
  const present = op.greater(op.unsqueeze(attentionMask, [1]), op.scalar(g, "i64", 0)); // [b, 1, k]
  const visible = op.and(causal, present); // [b, q, k]
  const dt = hidden.dtype;
  const bias = op.unsqueeze(
    op.where(visible, op.scalar(g, dt, 0), op.scalar(g, dt, maskMin(dt))),
    [1],
  );
  return { hidden, attentionMask, positions, bias, past: options.past, present: [] };
}

/**
 * Attention of one layer given its heads (`qh` `[b, heads, q, hd]`, `kh`/`vh`
 * `[b, kv_heads, q, hd]`): prepends the layer's cached keys and values, applies the state's
 * bias, and shares each key/value head among `heads / kv_heads` query heads (grouped-query
 * attention). Returns the merged heads `[b, q, heads·hd]` and this layer's keys and values
 * (cache included), which {@linkcode withLayerOutput} records.
 */
export function cachedAttention(
  state: DecoderState,
  layer: number,
  qh: Value,
  kh: Value,
  vh: Value,
  scale: number,
): { out: Value; present: KeyValue } {
  const past = state.past?.[layer];
  if (state.past && !past) throw new Error(`decoder: no KV cache given for layer ${layer}`);
  const key = past ? op.concat([past.key, kh], 2) : kh;
  const value = past ? op.concat([past.value, vh], 2) : vh;
  const [b, heads, q, hd] = qh.shape;
  const kvHeads = key.shape[1] as number;
  if (kvHeads === heads) {
    return {
      out: mergeHeads(attendHeads(qh, key, value, { scale, mask: state.bias })),
      present: { key, value },
    };
  }
  // [b, kv, group, q, hd] against [b, kv, 1, k, hd]: each key/value head serves a group.
  const grouped = op.reshape(qh, [b, kvHeads, (heads as number) / kvHeads, q, hd]);
  const out = attendHeads(grouped, op.unsqueeze(key, [2]), op.unsqueeze(value, [2]), {
    scale,
    mask: op.unsqueeze(state.bias, [1]),
  });
  return { out: mergeHeads(op.reshape(out, [b, heads, q, hd])), present: { key, value } };
}

/** The state after layer `i`: new hidden states and that layer's keys and values. */
export function withLayerOutput(
  state: DecoderState,
  i: number,
  hidden: Value,
  present: KeyValue,
): DecoderState {
  const all = [...state.present];
  all[i] = present;
  return { ...state, hidden, present: all };
}

/** Runs layers `from … to - 1` (a stage); `runLayers(d, s, 0, n)` runs the whole stack. */
export function runLayers(
  decoder: CausalDecoder,
  state: DecoderState,
  from: number,
  to: number,
): DecoderState {
  checkLayerRange(decoder.config, from, to);
  let s = state;
  for (let i = from; i < to; i++) s = decoder.layer(i, s);
  return s;
}

/** Throws unless `[from, to)` is a layer range within `0 .. config.numLayers`. */
function checkLayerRange(config: DecoderConfig, from: number, to: number): void {
  const n = config.numLayers;
  if (!(Number.isInteger(from) && Number.isInteger(to) && 0 <= from && from <= to && to <= n)) {
    throw new Error(`decoder: layer range ${from}..${to} is not within 0..${n}`);
  }
}

/** Throws unless `i` is a layer index of `config`; `what` names the caller in the error. */
export function checkLayerIndex(config: DecoderConfig, i: number, what: string): void {
  if (!Number.isInteger(i) || i < 0 || i >= config.numLayers) {
    throw new Error(`${what}: layer ${i} does not exist (${config.numLayers} layers)`);
  }
}

/** Input and output names of the graph of {@linkcode buildDecodeStep} (optimum's names). */
export const DECODE_NAMES = {
  inputIds: "input_ids",
  inputsEmbeds: "inputs_embeds",
  hidden: "hidden",
  attentionMask: "attention_mask",
  logits: "logits",
  hiddenOut: "hidden_out",
  pastKey: (i: number) => `past_key_values.${i}.key`,
  pastValue: (i: number) => `past_key_values.${i}.value`,
  presentKey: (i: number) => `present.${i}.key`,
  presentValue: (i: number) => `present.${i}.value`,
} as const;

/**
 * A residual added to the output of one decoder layer in every step of a generation (an
 * editor's experts, chosen once from the prompt). It is part of the decode-step graph, so the
 * KV cache holds the keys and values of the edited hidden states.
 */
export interface ResidualHook {
  /** The decoder layer whose output gets the residual. */
  readonly layer: number;
  /** Names the graph {@linkcode ResidualHook.apply} builds: equal keys build equal graphs. */
  readonly key: string;
  /**
   * `hidden + residual` for the f32 hidden states `[b, q, d]` at the output of `layer`, built
   * into `hidden`'s graph; declares the graph inputs it reads (fed from `feeds`).
   */
  apply(hidden: Value): Value;
  /** The feeds of the inputs `apply` declares: the same for every step. */
  readonly feeds: Readonly<Record<string, Tensor>>;
}

/** Options of {@linkcode buildDecodeStep}. */
export interface DecodeStepOptions {
  /**
   * What the step takes: token ids (`input_ids` `[b, new]`), embeddings (`inputs_embeds`,
   * the default) or, for a stage that starts after layer 0, the previous stage's hidden states
   * (`hidden` `[b, new, d]`).
   */
  readonly input?: "input_ids" | "inputs_embeds" | "hidden";
  /**
   * A residual added at the output of layer `hook.layer` (see {@linkcode ResidualHook}); a
   * stage whose layers do not hold `hook.layer` leaves it out.
   */
  readonly hook?: ResidualHook;
  /**
   * The layers `[from, to)` of the step (default: all), a stage of a model placed on several
   * devices: it keeps the KV cache of its own layers only, and ends in `hidden_out` (the output
   * of layer `to - 1`) unless `to` is the last layer, where it ends in the logits.
   */
  readonly layers?: readonly [number, number];
}

/**
 * A traced decode step: `logits` (or `hidden_out`) and `present.<i>.key`/`.value` for every
 * layer of the step (see {@linkcode DECODE_NAMES}).
 */
export type DecodeStep = TracedGraph;

/**
 * One step of incremental decoding: `new` tokens (ids or embeddings `[b, new, d]`), the mask
 * of the whole sequence `[b, past+new]`, and every layer's cache
 * `past_key_values.<i>.key`/`.value` `[b, kv_heads, past, head_dim]` give the logits of the new
 * tokens `[b, new, vocab]` and the grown cache `present.<i>.key`/`.value`
 * `[b, kv_heads, past+new, head_dim]`. The first step (the prompt) feeds a cache with `past`
 * = 0; positions come from the mask as in the uncached forward pass. With `options.hook`, the
 * hook's residual is added at the output of its layer (to the new tokens; the cached ones got
 * it in their own steps), and the graph also takes the hook's inputs. With `options.layers`
 * the step is one stage: layers `[from, to)` from `hidden` (when `from > 0`) to `hidden_out`
 * (when `to` is not the last layer); the stages of a split compose to the whole step.
 *
 * Inputs and outputs are f32 whatever the decoder's compute dtype: embeddings and the cache are
 * cast to it on entry, logits and the grown cache back to f32 (f16 → f32 → f16 is exact).
 */
export function buildDecodeStep(
  decoder: CausalDecoder,
  options: DecodeStepOptions = {},
): DecodeStep {
  const c = decoder.config;
  const [from, to] = options.layers ?? [0, c.numLayers];
  if (!(Number.isInteger(from) && Number.isInteger(to) && 0 <= from && from < to)) {
    throw new Error(`decode step: layers ${from}..${to} are not a non-empty layer range`);
  }
  checkLayerRange(c, from, to);
  const input = options.input ?? (from === 0 ? "inputs_embeds" : "hidden");
  if ((input === "hidden") !== (from > 0)) {
    throw new Error(
      `decode step: a step from layer ${from} takes ${
        from > 0 ? "hidden" : "ids or embeddings"
      }, ` +
        `not ${input}`,
    );
  }
  const g = new Graph();
  const n = DECODE_NAMES;
  const f32In = (name: string, shape: (string | number)[]) =>
    op.cast(g.input(name, "f32", shape), decoder.dtype);
  const mask = g.input(n.attentionMask, "i64", ["batch", "past+new"]);
  const cacheShape = ["batch", c.numKvHeads, "past", c.headDim];
  const past: KeyValue[] = [];
  for (let i = from; i < to; i++) {
    past[i] = { key: f32In(n.pastKey(i), cacheShape), value: f32In(n.pastValue(i), cacheShape) };
  }
  const f32 = (v: Value) => op.cast(v, "f32");
  let state: DecoderState;
  if (input === "hidden") {
    state = decoder.resume(g, f32In(n.hidden, ["batch", "new", c.hiddenSize]), mask, { past });
  } else {
    const embeds = input === "input_ids"
      ? decoder.embedTokens(g, g.input(n.inputIds, "i64", ["batch", "new"]))
      : f32In(n.inputsEmbeds, ["batch", "new", c.hiddenSize]);
    state = decoder.begin(g, embeds, mask, { past });
  }
  const hook = options.hook;
  if (hook) checkLayerIndex(c, hook.layer, "decode step: residual hook");
  if (hook && from <= hook.layer && hook.layer < to) {
    state = runLayers(decoder, state, from, hook.layer + 1);
    state = { ...state, hidden: op.cast(hook.apply(f32(state.hidden)), decoder.dtype) };
    state = runLayers(decoder, state, hook.layer + 1, to);
  } else {
    state = runLayers(decoder, state, from, to);
  }
  const outputs: Record<string, Value> = to === c.numLayers
    ? { [n.logits]: f32(decoder.head(g, state.hidden)) }
    : { [n.hiddenOut]: f32(state.hidden) };
  for (let i = from; i < to; i++) {
    outputs[n.presentKey(i)] = f32(state.present[i]!.key);
    outputs[n.presentValue(i)] = f32(state.present[i]!.value);
  }
  return { graph: g, outputs };
}

/** Where a decoder's weights live in a checkpoint. */
export interface DecoderKeys {
  /** Prefix of the decoder's own weights, e.g. `"model.decoder."` or `"language_model.model."`. */
  readonly model: string;
  /** Name of the LM head's weight, e.g. `"lm_head.weight"` (unused when the head is tied). */
  readonly lmHead: string;
}

/**
 * Where a decoder comes from: a Hugging Face model directory (`config.json` and
 * `model.safetensors` or a sharded index), or a parsed config section with a weight store (a
 * VLLM's `text_config` and checkpoint). `prefix` is the prefix of the `*ForCausalLM` module in
 * the checkpoint (`""`, or `"language_model."` for BLIP-2 and LLaVA), or the exact
 * {@linkcode DecoderKeys}.
 */
export type DecoderSource =
  | string
  | {
    readonly config: ConfigFields;
    readonly store: WeightStore;
    readonly prefix?: string | DecoderKeys;
  };

/** A source resolved to its config fields, weight store and keys. */
export interface ResolvedSource {
  /** The config fields of the decoder. */
  readonly config: ConfigFields;
  /** The checkpoint's weights. */
  readonly store: WeightStore;
  /** Where the decoder's weights are. */
  readonly keys: DecoderKeys;
}

/**
 * Opens `source` (see {@linkcode DecoderSource}); `inner` is the architecture's module path
 * inside a `*ForCausalLM` (`"model.decoder."` for OPT, `"model."` for LLaMA).
 */
export async function resolveSource(
  source: DecoderSource,
  inner: string,
  computeDtype: ComputeDType = "f32",
): Promise<ResolvedSource> {
  const keysOf = (prefix: string | DecoderKeys = ""): DecoderKeys =>
    typeof prefix === "string"
      ? { model: prefix + inner, lmHead: `${prefix}lm_head.weight` }
      : prefix;
  const { config, store, prefix } = typeof source === "string"
    ? await openDecoderDir(source, computeDtype)
    : source;
  return { config, store, keys: keysOf(prefix) };
}

/**
 * The `config.json` fields and the weights of the Hugging Face model directory `dir`, opened
 * with the one model-directory loader (`openModelDir` of `src/io/model_dir.ts`: errors name
 * the directory, file and field).
 */
export async function openDecoderDir(
  dir: string,
  computeDtype: ComputeDType = "f32",
): Promise<{ config: ConfigFields; store: WeightStore; prefix?: string }> {
  const md = await openModelDir(dir);
  return {
    config: new ConfigFields(md.config, md.configPath),
    store: await WeightStore.open(md.checkpoint, computeDtype),
  };
}

/**
 * Traces the whole model once into a throwaway graph, so that every weight is looked up with
 * the shape the config implies: a missing or misshaped weight fails when the model is loaded,
 * naming the checkpoint file and key, rather than when a graph is first built.
 */
export function checkWeights(decoder: CausalDecoder): void {
  const g = new Graph();
  const ids = g.input("input_ids", "i64", ["batch", "seq"]);
  const mask = g.input("attention_mask", "i64", ["batch", "seq"]);
  const state = decoder.begin(g, decoder.embedTokens(g, ids), mask);
  decoder.head(g, runLayers(decoder, state, 0, decoder.config.numLayers).hidden);
}

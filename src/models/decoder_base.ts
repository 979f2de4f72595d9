/**
 * What the decoders (`opt.ts`, `llama.ts`) share as code: {@linkcode DecoderBase} holds the
 * config, the weights and where they are, and builds the token embeddings and the LM head;
 * each architecture adds its positions, layers and final norm. {@linkcode openDecoder} loads
 * one from a {@linkcode DecoderSource} and checks every weight.
 *
 * @module
 */
import type { Graph, Value } from "../graph/ir.ts";
import * as op from "../graph/ops.ts";
import {
  type BeginOptions,
  type CausalDecoder,
  checkWeights,
  type DecoderConfig,
  type DecoderKeys,
  type DecoderSource,
  type DecoderState,
  resolveSource,
} from "./decoder.ts";
import type { ConfigFields } from "./hf_config.ts";
import type { ComputeDType, WeightStore } from "./weights.ts";

/** The shared part of the decoders (see the module docs). */
export abstract class DecoderBase<C extends DecoderConfig> implements CausalDecoder {
  /** The parsed config. */
  readonly config: C;
  /** The checkpoint's weights. */
  readonly store: WeightStore;
  /** Where the weights are in the checkpoint. */
  readonly keys: DecoderKeys;

  /** Wraps a parsed config and weights; {@linkcode openDecoder} also checks every weight. */
  constructor(config: C, store: WeightStore, keys: DecoderKeys) {
    this.config = config;
    this.store = store;
    this.keys = keys;
  }

  /** Dtype the graphs compute in. */
  get dtype(): ComputeDType {
    return this.store.computeDtype;
  }

  /** The decoder's weight `name` (relative to `keys.model`) in `g`, shape checked. */
  weight(g: Graph, name: string, shape: readonly number[]): Value {
    return this.store.get(g, this.keys.model + name, shape);
  }

  /** `embed_tokens` rows of `inputIds` `[b, s]` (not scaled). */
  embedTokens(g: Graph, inputIds: Value): Value {
    return op.gather(this.#embedTable(g), inputIds, 0);
  }

  /** Final norm and LM head: `lm_head.weight`, or `embed_tokens` when tied. */
  head(g: Graph, hidden: Value): Value {
    const c = this.config;
    const w = c.tieWordEmbeddings
      ? this.#embedTable(g)
      : this.store.get(g, this.keys.lmHead, [c.vocabSize, c.hiddenSize]);
    return op.linear(this.finalNorm(hidden), w);
  }

  #embedTable(g: Graph): Value {
    return this.weight(g, "embed_tokens.weight", [this.config.vocabSize, this.config.hiddenSize]);
  }

  /** See `CausalDecoder.begin`. */
  abstract begin(
    g: Graph,
    inputsEmbeds: Value,
    attentionMask: Value,
    options?: BeginOptions,
  ): DecoderState;
  /** See `CausalDecoder.resume`. */
  abstract resume(
    g: Graph,
    hidden: Value,
    attentionMask: Value,
    options?: BeginOptions,
  ): DecoderState;
  /** See `CausalDecoder.layer`. */
  abstract layer(i: number, state: DecoderState): DecoderState;
  /** See `CausalDecoder.finalNorm`. */
  abstract finalNorm(hidden: Value): Value;
}

/**
 * Opens `source` (the decoder module at `inner` of a `*ForCausalLM`, e.g. `"model."`; see
 * {@linkcode DecoderSource}), builds the decoder with `make` and traces it once so that every
 * weight is checked against the config: a missing key or wrong shape is an error naming the
 * checkpoint file and key. `computeDtype` applies when loading from a directory; a given
 * store keeps its own.
 */
export async function openDecoder<D extends CausalDecoder>(
  source: DecoderSource,
  inner: string,
  computeDtype: ComputeDType,
  make: (config: ConfigFields, store: WeightStore, keys: DecoderKeys) => D,
): Promise<D> {
  const { config, store, keys } = await resolveSource(source, inner, computeDtype);
  const decoder = make(config, store, keys);
  checkWeights(decoder);
  return decoder;
}

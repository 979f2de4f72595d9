/**
 * Shared helpers for the decoder tests: fixture paths, temporary model directories with edited
 * configs or weights, and greedy generation with and without the KV cache.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { compileModel } from "../../src/graph/compile.ts";
import { SafetensorsFile, writeSafetensors } from "../../src/io/safetensors.ts";
import { Graph, type Value } from "../../src/graph/ir.ts";
import {
  buildDecodeStep,
  type CausalDecoder,
  DECODE_NAMES,
  runLayers,
} from "../../src/models/decoder.ts";
import {
  compareAtTokens,
  forwardGraph,
  runTraced,
  type TracedGraph,
} from "../../src/models/fixtures/decoder.ts";
import { ConfigFields } from "../../src/models/hf_config.ts";
import { loadDecoder } from "../../src/models/backbones.ts";
import { openCheckpoint } from "../../src/io/sharded.ts";
import { WeightStore } from "../../src/models/weights.ts";
import { LocalSession } from "../../src/runtime/session.ts";
import { inputsSpecOf } from "../../src/graph/runner.ts";
import { relErr } from "../../src/tensor/compare.ts";
import { Tensor } from "../../src/tensor/tensor.ts";

/** The read-only model fixtures. */
export const FIXTURES = new URL("../fixtures/models/", import.meta.url).pathname;

/** Every tensor a decoder fixture check must report. */
export const DECODER_REFS = [
  "layer_in.0",
  "layer_out.0",
  "layer_out.1",
  "hidden_states.0",
  "hidden_states.1",
  "hidden_states.2",
  "logits",
  "hooked.logits",
  "hooked.layer_out.0",
  "loss.label_loss",
  "loss.logit_KL_loss",
];

/** Runs `fn` with a fresh temporary directory, removed afterwards. */
export async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "liveedit-decoder-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** All tensors of a `.safetensors` file. */
export async function readAll(file: string): Promise<Record<string, Tensor>> {
  const st = await SafetensorsFile.open(file);
  try {
    const out: Record<string, Tensor> = {};
    for (const info of st.tensors()) out[info.name] = await st.read(info.name);
    return out;
  } finally {
    st.close();
  }
}

/**
 * Writes a copy of fixture `family` into `dir` with its config patched by `config` and its
 * weights rewritten by `weights` (which may delete, replace or add tensors).
 */
export async function patchedFixture(
  family: string,
  dir: string,
  config: Record<string, unknown> = {},
  weights: (w: Record<string, Tensor>) => void = () => {},
): Promise<string> {
  const src = join(FIXTURES, family);
  const json = JSON.parse(await Deno.readTextFile(join(src, "config.json")));
  await Deno.writeTextFile(join(dir, "config.json"), JSON.stringify({ ...json, ...config }));
  const tensors = await readAll(join(src, "model.safetensors"));
  weights(tensors);
  await writeSafetensors(join(dir, "model.safetensors"), tensors);
  return dir;
}

/** An int64 tensor. */
export function i64(shape: number[], values: number[]): Tensor<"i64"> {
  return new Tensor("i64", shape, BigInt64Array.from(values.map(BigInt)));
}

/** Index of the largest of `logits[b, pos, :]` for each row `b`. */
function argmaxAt(logits: Tensor, pos: number): number[] {
  const [b, s, v] = logits.shape;
  const data = logits.data as Float32Array;
  return Array.from({ length: b }, (_, r) => {
    const row = data.subarray((r * s + pos) * v, (r * s + pos + 1) * v);
    return row.indexOf(Math.max(...row));
  });
}

/** The rows of `t` `[b, s, v]` at position `pos`, `[b, 1, v]`. */
function rowsAt(t: Tensor, pos: number): Tensor {
  const [b, s, v] = t.shape;
  const data = t.data as Float32Array;
  const out = new Float32Array(b * v);
  for (let r = 0; r < b; r++) {
    out.set(data.subarray((r * s + pos) * v, (r * s + pos + 1) * v), r * v);
  }
  return new Tensor("f32", [b, 1, v], out);
}

/**
 * Greedy decoding of `steps` tokens after `prompt` (`[b, s]` ids, `mask` its attention mask)
 * twice: with the KV-cache decode step, and by running the whole sequence each step. Asserts
 * the same tokens and last-position logits within `tol`; returns the generated tokens.
 */
export async function assertCachedGreedyMatches(
  decoder: CausalDecoder,
  prompt: Tensor<"i64">,
  mask: Tensor<"i64">,
  steps: number,
  cacheDir: string,
  tol = 1e-4,
): Promise<number[][]> {
  const c = decoder.config;
  const [b, s] = prompt.shape;
  const step = buildDecodeStep(decoder, { input: "input_ids" });
  const full = forwardGraph(decoder);
  const open = async (t: TracedGraph) =>
    await LocalSession.create((await compileModel(t.graph, t.outputs, { cacheDir })).path, {
      inputsSpec: inputsSpecOf(t.graph),
    });
  const cached = await open(step);
  const uncached = await open(full);
  try {
    const n = DECODE_NAMES;
    const empty = new Tensor("f32", [b, c.numKvHeads, 0, c.headDim], new Float32Array(0));
    let cache: Record<string, Tensor> = {};
    for (let i = 0; i < c.numLayers; i++) {
      cache[n.pastKey(i)] = empty;
      cache[n.pastValue(i)] = empty;
    }
    let ids = Array.from(
      { length: b },
      (_, r) => Array.from(prompt.data.subarray(r * s, (r + 1) * s), Number),
    );
    let maskRows = Array.from(
      { length: b },
      (_, r) => Array.from(mask.data.subarray(r * s, (r + 1) * s), Number),
    );
    let newIds = prompt;
    const generated: number[][] = Array.from({ length: b }, () => []);
    for (let t = 0; t < steps; t++) {
      const len = ids[0].length;
      const fullMask = i64([b, len], maskRows.flat());
      const out = await cached.run({ [n.inputIds]: newIds, [n.attentionMask]: fullMask, ...cache });
      const ref = await uncached.run({
        input_ids: i64([b, len], ids.flat()),
        attention_mask: fullMask,
      });
      const last = out.logits.shape[1] - 1;
      const err = relErr(rowsAt(out.logits, last), rowsAt(ref.logits, len - 1));
      assert.ok(err <= tol, `step ${t}: cached logits differ from uncached by ${err}`);
      const next = argmaxAt(out.logits, last);
      assert.deepEqual(next, argmaxAt(ref.logits, len - 1), `step ${t}: greedy tokens differ`);
      next.forEach((tok, r) => generated[r].push(tok));
      cache = {};
      for (let i = 0; i < c.numLayers; i++) {
        cache[n.pastKey(i)] = out[n.presentKey(i)];
        cache[n.pastValue(i)] = out[n.presentValue(i)];
        assert.deepEqual(out[n.presentKey(i)].shape, [b, c.numKvHeads, len, c.headDim]);
      }
      ids = ids.map((row, r) => [...row, next[r]]);
      maskRows = maskRows.map((row) => [...row, 1]);
      newIds = i64([b, 1], next);
    }
    return generated;
  } finally {
    await cached.release();
    await uncached.release();
  }
}

/**
 * Checks the language model inside VLLM fixture `family` (`blip2_opt`, `llava`): loads it from
 * `text_config` under `language_model.`, runs it from the reference `lm.inputs_embeds` and
 * `mask`, and asserts `lm.layer_out.*` and `logits` within 1e-4 on the token positions.
 */
export async function assertVllmLanguageModel(
  family: string,
  maskName: string,
  logitsName: string,
  cacheDir: string,
): Promise<void> {
  const dir = join(FIXTURES, family);
  const config = (await ConfigFields.read(join(dir, "config.json"))).section("text_config");
  const store = await WeightStore.open(await openCheckpoint(dir));
  const lm = await loadDecoder({ config, store, prefix: "language_model." });
  const refs = await readAll(join(dir, "refs.safetensors"));
  const g = new Graph();
  const embeds = g.input("inputs_embeds", "f32", ["batch", "seq", lm.config.hiddenSize]);
  const mask = g.input("attention_mask", "i64", ["batch", "seq"]);
  let state = lm.begin(g, embeds, mask);
  const outputs: Record<string, Value> = {};
  for (let i = 0; i < lm.config.numLayers; i++) {
    state = runLayers(lm, state, i, i + 1);
    outputs[`lm.layer_out.${i}`] = state.hidden;
  }
  outputs[logitsName] = lm.head(g, state.hidden);
  const ours = await runTraced({ graph: g, outputs }, {
    inputs_embeds: refs["lm.inputs_embeds"],
    attention_mask: refs[maskName],
  }, { cacheDir });
  for (const [name, t] of Object.entries(ours)) {
    const row = compareAtTokens(name, t, refs[name], refs[maskName]);
    assert.ok(row.maxRelErr <= 1e-4, `${family} ${name}: ${row.maxRelErr}`);
  }
}

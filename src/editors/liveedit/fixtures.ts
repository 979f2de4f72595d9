/**
 * The editor fixture check: recomputes every output, gradient and one-step Adam result of a
 * fixture directory (the layout of `tests/fixtures/editor/`: `manifest.json`,
 * `params.safetensors`, `data.safetensors`, `data_f64.safetensors`) with this project's
 * graphs and reports the error of each tensor.
 *
 * References: each tensor is compared with its float32 reference (`data.safetensors`) unless
 * that reference is itself noisier than a quarter of the bound against the float64 one
 * (`data_f64.safetensors`), in which case the float64 reference is used (`reference: "f64"`).
 * The error is `max|ours - ref| / max|ref|` per tensor (`relErr`). Gradients the manifest
 * marks analytically zero have no scale of their own: they are compared with 0 and their
 * `maxAbsErr` is divided by the largest float64 gradient magnitude of the fixture.
 * Booleans (retrieval maps) must match exactly (`maxRelErr` = fraction that differs).
 * `adam1/*` applies this project's Adam to the fixture's float32 gradients, as the reference
 * did. Dims are read from the manifest and the tensors, so any directory of this format works.
 *
 * @module
 */
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { Graph } from "../../graph/ir.ts";
import * as op from "../../graph/ops.ts";
import { SafetensorsFile } from "../../io/safetensors.ts";
import { labelOutputs, output } from "../../runtime/outputs.ts";
import { maxAbsDiff, relErr } from "../../tensor/compare.ts";
import { toNumbers } from "../../tensor/elements.ts";
import type { Tensor } from "../../tensor/tensor.ts";
import { Adam } from "../../train/adam.ts";
import type { EditorDims } from "./config.ts";
import { buildEditGraph, editFeeds } from "./editing.ts";
import { type BackboneLoss, buildTrainingGraph } from "./losses.ts";
import {
  type ExampleGroup,
  type ExampleKind,
  packTrainBatch,
  type PairRef,
  type TrainSequence,
} from "./train_batch.ts";
import { attention } from "./modules.ts";
import { checkParams, type EditorParams, paramInputs, type ParamValues } from "./params.ts";
import { ExpertPool } from "./pool.ts";
import { buildRouteGraph, editResidual, routeFeeds, similarity, softRouting } from "./routing.ts";
import { runOnce } from "../../graph/runner.ts";
import { stackSequences } from "./tokens.ts";

/** The bound on every tensor's error (f32 computation against the reference). */
export const FIXTURE_BOUND = 1e-5;

/** One compared tensor. */
export interface FixtureRow {
  /** The fixture's `case`. */
  readonly case: string;
  /** Tensor name in the fixture files. */
  readonly tensor: string;
  /** Relative error (see the module docs). */
  readonly maxRelErr: number;
  /** `max|ours - ref|`. */
  readonly maxAbsErr: number;
  /** Which reference was used. */
  readonly reference: "f32" | "f64" | "zero" | "exact";
}

/** The whole check. */
export interface FixtureReport {
  /** The fixture's `case`. */
  readonly case: string;
  /** One row per compared tensor. */
  readonly rows: FixtureRow[];
  /** The largest `maxRelErr`. */
  readonly maxRelErr: number;
  /** Whether every row is within {@linkcode FIXTURE_BOUND}. */
  readonly pass: boolean;
}

/** Options of {@linkcode checkEditorFixture}. */
export interface FixtureOptions {
  /** Device of the sessions (default `"cpu"`). */
  readonly device?: string;
}

// deno-lint-ignore no-explicit-any
type Json = any;

/** Reads a required manifest field; throws naming the file and field. */
function field(manifest: Json, file: string, ...keys: string[]): Json {
  let v = manifest;
  for (const k of keys) {
    if (v === null || typeof v !== "object" || !(k in v)) {
      throw new Error(`editor fixture ${file}: field ${keys.join(".")} is missing`);
    }
    v = v[k];
  }
  return v;
}

async function readAll(file: string): Promise<Record<string, Tensor>> {
  const f = await SafetensorsFile.open(file);
  try {
    const out: Record<string, Tensor> = {};
    for (const info of f.tensors()) out[info.name] = await f.read(info.name);
    return out;
  } finally {
    f.close();
  }
}

/** Rows `[0, rows)` × columns `[0, cols)` of the leading two dims of `t` `[B, C, …]`, flat. */
function block(t: Tensor, row: number, cols: number): Float64Array {
  const v = toNumbers(t);
  const inner = t.shape.slice(2).reduce((a, b) => a * b, 1);
  const start = row * t.shape[1] * inner;
  return v.slice(start, start + cols * inner);
}

/** Elements `mask[k]` of row `row` of `t` `[B, n]`. */
function selected(t: Tensor, row: number, mask: ArrayLike<number | boolean>): Float64Array {
  const v = block(t, row, t.shape[1]);
  return v.filter((_, k) => Boolean(mask[k]));
}

/** Recomputes the fixture in `dir` and compares every tensor (see the module docs). */
export async function checkEditorFixture(
  dir: string,
  options: FixtureOptions = {},
): Promise<FixtureReport> {
  const manifestFile = path.join(dir, "manifest.json");
  let manifest: Json;
  try {
    manifest = JSON.parse(await fs.readFile(manifestFile, "utf8"));
  } catch (e) {
    throw new Error(`editor fixture ${manifestFile}: ${e instanceof Error ? e.message : e}`);
  }
  const fld = (...keys: string[]) => field(manifest, manifestFile, ...keys);
  const caseName = String(fld("case"));
  const dims: EditorDims = {
    llmMidDim: fld("dims", "llm_mid_dim"),
    moduleDim: fld("dims", "module_dim"),
    crossAttHeadN: fld("dims", "cross_att_head_n"),
    eqeN: fld("dims", "eqe_n"),
    loraRank: fld("dims", "lora_rank"),
    loraScale: fld("dims", "lora_scale"),
    visionTokN: fld("dims", "vision_tok_n"),
  };
  const files = fld("files");
  const params = await readAll(path.join(dir, files.params)) as EditorParams;
  checkParams(params, dims, path.join(dir, files.params));
  const data = labelOutputs(
    `editor fixture ${files.data}`,
    await readAll(path.join(dir, files.data)),
  );
  const data64 = await readAll(path.join(dir, files.data_f64));
  const input = (name: string) => {
    const t = data[name];
    if (t === undefined) {
      throw new Error(`editor fixture ${files.data}: tensor '${name}' is missing`);
    }
    return t;
  };
  /** Input `name` as f32: one of another dtype is an error naming it. */
  const f32Input = (name: string) => {
    input(name);
    return output(data, name, "f32");
  };
  const at = { device: options.device ?? "cpu", name: "editor-fixture" };
  const ours = new Map<string, ArrayLike<number>>();
  const functions: Json[] = fld("functions");
  const fn = (prefix: string) => {
    const f = functions.find((x) => String(x.name).startsWith(prefix));
    if (f === undefined) {
      throw new Error(`editor fixture ${manifestFile}: no function '${prefix}…'`);
    }
    return f;
  };

  // Attention.forward, both variants.
  {
    const g = new Graph();
    const p = paramInputs(g, dims);
    const module = String(fn("Attention.forward").module);
    const inp1 = input("in/attn/inp1"), inp2 = input("in/attn/inp2");
    const q = g.input("in/attn/inp1", "f32", inp1.shape);
    const kv = { reps: g.input("in/attn/inp2", "f32", inp2.shape), mask: null };
    const outputs = {
      "out/attn/out": attention(p, module, q, kv, dims.crossAttHeadN, false),
      "out/attn/out_rescaled": attention(p, module, q, kv, dims.crossAttHeadN, true),
    };
    const out = await runOnce(g, outputs, { ...params, ...data }, at);
    for (const [k, v] of Object.entries(out)) ours.set(k, toNumbers(v));
  }

  // get_new_edit for every edit, all in one batch; the pool is their concatenation.
  const edits: TrainSequence[] = [];
  while (data[`in/edit${edits.length}/reps`]) {
    const i = edits.length;
    edits.push({
      reps: f32Input(`in/edit${i}/reps`),
      ranges: input(`in/edit${i}/ranges`),
    });
  }
  // retrieve_moes + get_edit_residual for every retrieval input, all in one batch.
  const retr: { reps: Tensor<"f32">; vision: [number, number]; queryEnd: number }[] = [];
  while (data[`in/retr${retr.length}/reps`]) {
    const t = retr.length;
    const r = toNumbers(input(`in/retr${t}/ranges`));
    retr.push({
      reps: f32Input(`in/retr${t}/reps`),
      vision: [r[2], r[3]],
      queryEnd: r[5],
    });
  }
  const retrievalMaps: Record<string, number[]> = manifest.retrieval_maps ?? {};
  // Editing and retrieval in both attention orders (modules.ts): the authors' ("keys") under the
  // fixture's names, the inference graphs' "queries" order under `<name>@queries`, both
  // compared with the same references.
  for (const order of ["keys", "queries"] as const) {
    const tag = (name: string) => order === "keys" ? name : `${name}@${order}`;
    const pool = new ExpertPool(dims, 1);
    {
      const e = buildEditGraph(dims, null, order);
      const out = await runOnce(e.graph, e.outputs, { ...params, ...editFeeds(dims, edits) }, at);
      const parts = { eqr: "eqr", evr: "evr", moe_c: "moe_cs", moe_r: "moe_rs" } as const;
      edits.forEach((_, i) => {
        const row = (k: keyof typeof parts) => Float32Array.from(block(out[k], i, out[k].shape[1]));
        for (const k of Object.keys(parts) as (keyof typeof parts)[]) {
          ours.set(tag(`out/edit${i}/${k}`), row(k));
        }
        pool.add({ eqr: row("eqr"), evr: row("evr"), moeC: row("moe_c"), moeR: row("moe_r") });
      });
      for (const [k, name] of Object.entries(parts)) {
        ours.set(tag(`out/pool/${name}`), toNumbers(out[k]));
      }
    }

    if (retr.length > 0) {
      const { graph: g, outputs } = buildRouteGraph(dims, order);
      const p = Object.fromEntries(
        Object.keys(params).map((k) => [k, g.inputs.get(k)!]),
      ) as ParamValues;
      const get = (name: string) => g.inputs.get(name)!;
      const all = softRouting(similarity(dims, outputs.iqr, get("pool/eqr")), null);
      const allResidual = editResidual(
        p,
        get("hidden"),
        get("pool/moe_cs"),
        get("pool/moe_rs"),
        all.fuseCoe,
      );
      const hidden = stackSequences(
        retr.map((r) => r.reps),
        dims.llmMidDim,
        (t) => `in/retr${t}/reps`,
      );
      const feeds = routeFeeds(
        hidden,
        retr.map((r) => ({ vision: r.vision, queryEnd: r.queryEnd })),
        pool.views(),
      );
      const out = await runOnce(
        g,
        {
          ...outputs,
          "all/rela_sim": all.relaSim,
          "all/abs_sim": all.absSim,
          "all/fuse_coe": all.fuseCoe,
          "all/edit_residual": allResidual,
        },
        { ...params, ...feeds },
        at,
      );
      retr.forEach((r, t) => {
        const L = r.reps.shape[1], n = pool.size;
        const map = block(out.retrieval_map, t, n);
        const set = (k: string, v: ArrayLike<number>) => ours.set(tag(`out/retr${t}/${k}`), v);
        for (const k of ["ivr", "ivr_prot", "iqr"]) set(k, block(out[k], t, out[k].shape[1]));
        set("vis_sim", block(out.vis_sim, t, n));
        set("vis_sim_prot", block(out.vis_sim_prot, t, 1));
        set("retrieval_map", map);
        set("fuse_coe", selected(out.fuse_coe, t, map));
        for (const k of ["edit_residual", "hooked_output", "all/edit_residual"]) {
          set(k, block(out[k], t, L));
        }
        for (const k of ["all/rela_sim", "all/abs_sim", "all/fuse_coe"]) {
          set(k, block(out[k], t, n));
        }
        const expected = retrievalMaps[`retr${t}`];
        if (expected !== undefined) ours.set(tag(`manifest/retrieval_maps/retr${t}`), map);
      });
    }
  }

  // train_a_batch: one graph, the backbone loss replaced by <residual, G>.
  const train = fn("train_a_batch");
  const groupNames: string[] = [];
  for (const key of Object.keys(data)) {
    const m = /^in\/train\/([A-Za-z_]+?)0\/reps$/.exec(key);
    if (m) groupNames.push(m[1]);
  }
  const kindOf = (name: string): ExampleKind =>
    name.startsWith("rel") ? "rel" : name.startsWith("gen") ? "gen" : "loc";
  const groups: ExampleGroup[] = ["rel", "gen", "loc"].flatMap((kind) =>
    groupNames.filter((n) => kindOf(n) === kind).map((name) => ({
      name,
      kind: kind as ExampleKind,
    }))
  );
  const b = Number(train.batch_size);
  const examples = (name: string) =>
    [...Array(b).keys()].map((j) => ({
      reps: f32Input(`in/train/${name}${j}/reps`),
      ranges: input(`in/train/${name}${j}/ranges`),
    }));
  const dotWithG: BackboneLoss = (residual, group) => {
    const G = group.graph.input(`${group.name}/G`, "f32", residual.shape);
    return op.reduceMean(op.reduceSum(op.mul(residual, G), [1, 2]));
  };
  const weights = {
    relLambda: 1,
    genLambda: 1,
    locLambda: 1,
    softRoutingLambda: 1,
    hardRoutingLambda: 1,
  };
  const tg = buildTrainingGraph(dims, weights, groups, dotWithG);
  const masks = train.moe_masks as Record<ExampleKind, number[][]>;
  const pairs = (side: Json): PairRef[] =>
    side.map(([group, index]: [string, number]) => ({ group, index }));
  const pairList = (p: Json) => {
    const a = pairs(p.side0_inpt_extractor), c = pairs(p.side1_edit_extractor);
    return a.map((x, j) => [x, c[j]] as const);
  };
  const feeds = packTrainBatch(dims, groups, {
    edits,
    groups: Object.fromEntries(groups.map((g) => [g.name, examples(g.name)])),
    masks: {
      rel: masks.rel.map((r) => r.map(Boolean)),
      gen: masks.gen.map((r) => r.map(Boolean)),
      loc: masks.loc.map((r) => r.map(Boolean)),
    },
    neighbourPairs: pairList(train.neighbor_pairs),
    prototypePairs: pairList(train.prototype_pairs),
  });
  for (const g of groups) {
    const Gs = [...Array(b).keys()].map((j) => f32Input(`in/train/${g.name}${j}/G`));
    feeds[`${g.name}/G`] = stackSequences(Gs, dims.llmMidDim, (j) => `in/train/${g.name}${j}/G`);
  }
  const gradOutputs = Object.fromEntries(
    Object.entries(tg.grads).map(([k, v]) => [`grad/${k}`, v]),
  );
  const out = await runOnce(
    tg.graph,
    { ...tg.outputs, ...gradOutputs },
    { ...params, ...feeds },
    at,
  );
  for (const g of groups) {
    const mask = masks[g.kind];
    for (let j = 0; j < b; j++) {
      const L = input(`in/train/${g.name}${j}/reps`).shape[1];
      const k = `out/train/${g.name}${j}`;
      ours.set(`${k}/iqr`, block(out[`${g.name}/iqr`], j, dims.eqeN));
      ours.set(`${k}/fuse_coe`, selected(out[`${g.name}/fuse_coe`], j, mask[j]));
      ours.set(`${k}/edit_residual`, block(out[`${g.name}/edit_residual`], j, L));
    }
    ours.set(`out/train/loss/${g.name}`, toNumbers(out[`loss/${g.name}`]));
  }
  for (const [k, v] of Object.entries(out)) {
    if (/^(soft|hard_neib|hard_prot|hard)\//.test(k) || k.startsWith("grad/")) {
      ours.set(k.startsWith("grad/") ? k : `out/${k}`, toNumbers(v));
    }
  }
  ours.set("out/train/total_loss", toNumbers(out.total_loss));

  // One Adam step on the fixture's float32 gradients.
  const adam = fld("constants", "adam");
  const stepped: Record<string, Float32Array> = {};
  for (const [k, t] of Object.entries(params)) stepped[k] = t.data.slice();
  const opt = new Adam(stepped, {
    lr: adam.lr,
    beta1: adam.betas[0],
    beta2: adam.betas[1],
    eps: adam.eps,
    weightDecay: adam.weight_decay,
  });
  opt.step(
    Object.fromEntries(Object.keys(params).map((k) => [k, f32Input(`grad/${k}`)])),
  );
  for (const [k, v] of Object.entries(stepped)) ours.set(`adam1/${k}`, v);

  return compare(caseName, manifest, data, data64, ours, retrievalMaps);
}

/** Compares every `out/`, `grad/` and `adam1/` tensor of the fixture with ours. */
function compare(
  caseName: string,
  manifest: Json,
  data: Record<string, Tensor>,
  data64: Record<string, Tensor>,
  ours: Map<string, ArrayLike<number>>,
  retrievalMaps: Record<string, number[]>,
): FixtureReport {
  const zeroGrads = new Set<string>(
    (manifest.analytically_zero_grads?.names ?? []).map((n: string) => `grad/${n}`),
  );
  let gradScale = 0;
  for (const [k, t] of Object.entries(data64)) {
    if (k.startsWith("grad/") && !zeroGrads.has(k)) {
      for (const v of toNumbers(t)) gradScale = Math.max(gradScale, Math.abs(v));
    }
  }
  const rows: FixtureRow[] = [];
  const row = (
    tensor: string,
    maxRelErr: number,
    maxAbsErr: number,
    reference: FixtureRow["reference"],
  ) => rows.push({ case: caseName, tensor, maxRelErr, maxAbsErr, reference });
  const names = Object.keys(data).filter((k) => /^(out|grad|adam1)\//.test(k));
  // `<name>@<variant>`: another way of computing `name`, against the same reference
  const variants = [...ours.keys()].filter((k) => k.includes("@") && k.startsWith("out/"));
  for (const key of [...names, ...variants]) {
    const name = key.split("@")[0], mine = ours.get(key);
    if (mine === undefined) {
      row(key, Infinity, Infinity, "f32");
      continue;
    }
    const ref32 = toNumbers(data[name]);
    if (mine.length !== ref32.length) {
      row(key, Infinity, Infinity, "f32");
      continue;
    }
    if (data[name].dtype === "u8" || data[name].dtype === "bool") {
      const wrong = ref32.filter((v, i) => Boolean(v) !== Boolean(mine[i])).length;
      row(key, ref32.length ? wrong / ref32.length : 0, wrong, "exact");
      continue;
    }
    if (zeroGrads.has(name)) {
      const abs = maxAbsDiff(mine, new Float64Array(mine.length));
      row(key, abs / Math.max(gradScale, 1e-30), abs, "zero");
      continue;
    }
    const ref64 = data64[name] ? toNumbers(data64[name]) : undefined;
    const noisy = ref64 !== undefined && relErr(ref32, ref64) > FIXTURE_BOUND / 4;
    const ref = noisy ? ref64! : ref32;
    row(key, relErr(mine, ref), maxAbsDiff(mine, ref), noisy ? "f64" : "f32");
  }
  const mapNames = Object.keys(retrievalMaps).flatMap((t) => {
    const name = `manifest/retrieval_maps/${t}`;
    const variants = [...ours.keys()].filter((k) => k.startsWith(`${name}@`));
    return [name, ...variants].map((key) => [t, key] as const);
  });
  for (const [t, name] of mapNames) {
    const expected = retrievalMaps[t];
    const mine = ours.get(name);
    const wrong = mine === undefined || mine.length !== expected.length
      ? Infinity
      : expected.filter((v, i) => Boolean(v) !== Boolean(mine[i])).length;
    row(
      name,
      Number.isFinite(wrong) ? wrong / Math.max(1, expected.length) : Infinity,
      wrong,
      "exact",
    );
  }
  const maxRelErr = rows.reduce((m, r) => Math.max(m, r.maxRelErr), 0);
  return { case: caseName, rows, maxRelErr, pass: rows.every((r) => r.maxRelErr <= FIXTURE_BOUND) };
}

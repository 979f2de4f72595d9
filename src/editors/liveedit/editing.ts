/**
 * Editing (spec §2) as a graph: from the layer-`l_e` representation of a request split into
 * vision, query and answer, `evr = edit_extractor.extract_vision(query, vision)`,
 * `eqr = edit_extractor.extract_query(query)`, `C = moegen_c(cat[vision, query, answer])`,
 * `R = moegen_r(cat[vision, query, answer])`. Batched over requests; each row equals the
 * authors' one-request `get_new_edit`.
 *
 * @module
 */
import { Graph, type Value } from "../../graph/ir.ts";
import type { EditorDims } from "./config.ts";
import {
  type AttentionOrder,
  extractQuery,
  extractVision,
  inferenceOrder,
  lowRankGenerator,
  type Tokens,
} from "./modules.ts";
import { paramExternals, type ParamFile } from "./param_file.ts";
import { paramInputs, type ParamValues } from "./params.ts";
import type { Tensor } from "../../tensor/tensor.ts";
import type { TracedGraph } from "../../graph/runner.ts";
import type { Vllm } from "../../models/vllm/vllm.ts";
import {
  flattenTokens,
  type Range,
  selectInput,
  type Selection,
  selectionFeeds,
  type SequenceParts,
  sequenceParts,
  stackSequences,
} from "./tokens.ts";

/** A new expert as graph values (one row per request). */
export interface NewEdit {
  /** `[k, e, m]`. */
  readonly eqr: Value;
  /** `[k, e, m]`. */
  readonly evr: Value;
  /** C `[k, r, d]`. */
  readonly moeC: Value;
  /** R `[k, r, d]`. */
  readonly moeR: Value;
}

/** `get_new_edit(vision, query, answer)`; `edit` holds `cat[vision, query, answer]` per row. */
export function newEdit(
  p: ParamValues,
  dims: EditorDims,
  vision: Tokens,
  query: Tokens,
  edit: Tokens,
  order: AttentionOrder = inferenceOrder(dims),
): NewEdit {
  return {
    evr: extractVision(p, "edit_extractor", dims, query, vision, order),
    eqr: extractQuery(p, "edit_extractor", dims, query, order),
    moeC: lowRankGenerator(p, "moegen_c", dims, edit, order),
    moeR: lowRankGenerator(p, "moegen_r", dims, edit, order),
  };
}

/**
 * The editing graph. Inputs: `reps` `[edits, seq, d]` (layer-`l_e` outputs of prompt+target),
 * the selections `vision/*`, `query/*` and `edit/*` (vision, query, answer) with one row per
 * request, and the parameters — unless `params` gives their file, where the graph reads them
 * as initializers. Outputs `eqr`, `evr`, `moe_c`, `moe_r`; attentions in `order` (default
 * `inferenceOrder(dims)`).
 */
export function buildEditGraph(
  dims: EditorDims,
  params: ParamFile | null = null,
  order: AttentionOrder = inferenceOrder(dims),
): { graph: Graph; outputs: Record<string, Value> } {
  const g = new Graph();
  const reps = g.input("reps", "f32", ["edits", "seq", dims.llmMidDim]);
  return { graph: g, outputs: editOutputs(dims, params, reps, order) };
}

/** The editing graph's outputs on `reps` `[edits, seq, d]` of its graph (see above). */
function editOutputs(
  dims: EditorDims,
  params: ParamFile | null,
  reps: Value,
  order: AttentionOrder = inferenceOrder(dims),
) {
  const g = reps.graph;
  const p = params ? paramExternals(g, dims, params) : paramInputs(g, dims);
  const flat = flattenTokens(reps);
  const sel = (name: string) => selectInput(flat, name, reps.shape[0]);
  const e = newEdit(p, dims, sel("vision"), sel("query"), sel("edit"), order);
  return { eqr: e.eqr, evr: e.evr, moe_c: e.moeC, moe_r: e.moeR };
}

/**
 * An edit in one session: the frozen `vllm` on prompt+target up to and including decoder layer
 * `layer` (`Vllm.stageGraph`), then the editing graph on that layer's output, with the editor's
 * weights read from `params`. Inputs: the VLLM's (`VLLM_INPUTS`, with an image) and the
 * selections of {@linkcode editSelectionFeeds}; outputs as {@linkcode buildEditGraph}'s. The
 * layer-`l_e` states stay inside the session (no copy out and back in).
 */
export function buildBackboneEditGraph(
  vllm: Vllm,
  layer: number,
  dims: EditorDims,
  params: ParamFile,
): TracedGraph {
  const { graph, outputs } = vllm.stageGraph(0, layer + 1, { image: true, head: false });
  return { graph, outputs: editOutputs(dims, params, outputs.hidden_out) };
}

/** A request's layer-`l_e` representation and its parts. */
export interface EditSequence {
  /** `f32 [1, L, d]` of prompt+target. */
  readonly reps: Tensor<"f32">;
  /** `[4, 2]` ranges: pre-vision, vision, query, answer (see `sequenceParts`). */
  readonly ranges: Tensor | readonly Range[];
}

/**
 * The feeds of {@linkcode buildEditGraph} (all but the parameters) for `requests`, one row
 * each. Vision and query must not be empty; errors name the request.
 */
export function editFeeds(
  dims: EditorDims,
  requests: readonly EditSequence[],
): Record<string, Tensor> {
  const what = (i: number) => `newEdit: request ${i}`;
  const reps = stackSequences(requests.map((r) => r.reps), dims.llmMidDim, what);
  const ranges = requests.map((r) => ({ ranges: r.ranges, length: r.reps.shape[1] }));
  return { reps, ...editSelectionFeeds(ranges, reps.shape[1]) };
}

/**
 * The selections `vision/*`, `query/*` and `edit/*` of the editing graph for sequences padded
 * to `L` tokens, one row per request: its `ranges` (pre-vision, vision, query, answer) in a
 * sequence of `length` tokens. Vision and query must not be empty; errors name the request.
 */
export function editSelectionFeeds(
  requests: readonly { readonly ranges: Tensor | readonly Range[]; readonly length: number }[],
  L: number,
): Record<string, Tensor> {
  const what = (i: number) => `newEdit: request ${i}`;
  const parts = requests.map((r, i) => {
    const pt = sequenceParts(r.ranges, r.length, what(i));
    for (const k of ["vision", "query"] as const) {
      if (pt[k][1] === pt[k][0]) throw new Error(`${what(i)}: the ${k} is empty`);
    }
    return pt;
  });
  const rows = (pick: (pt: SequenceParts) => Range[]): Selection[] =>
    parts.map((pt, seq) => ({ seq, ranges: pick(pt) }));
  return {
    ...selectionFeeds("vision", rows((pt) => [pt.vision]), L),
    ...selectionFeeds("query", rows((pt) => [pt.query]), L),
    ...selectionFeeds("edit", rows((pt) => [pt.vision, pt.query, pt.answer]), L),
  };
}

/**
 * The editor's trainable parameters: their names (the authors' state-dict keys), shapes,
 * PyTorch-default initialisation from a seeded {@linkcode Rng}, and their graph inputs.
 *
 * Names are `<module>.<key>` for the five trained modules, in state-dict order: a module's
 * own parameters first, then its submodules in registration order.
 *
 * @example
 * ```ts
 * import { initParams, paramSpecs } from "./params.ts";
 * import { Rng } from "../../tensor/rng.ts";
 * const dims = {
 *   llmMidDim: 16, moduleDim: 8, crossAttHeadN: 2, eqeN: 2, loraRank: 2, loraScale: 5,
 *   visionTokN: 3,
 * };
 * const p = initParams(dims, new Rng(0));
 * if (Object.keys(p).length !== paramSpecs(dims).length) throw new Error("params");
 * ```
 *
 * @module
 */
import type { Graph, Value } from "../../graph/ir.ts";
import { kaimingNormal, kaimingUniform, linearBias, ones, zeros } from "../../tensor/create.ts";
import type { Rng } from "../../tensor/rng.ts";
import type { Tensor } from "../../tensor/tensor.ts";
import type { EditorDims } from "./config.ts";

/** Editor parameters on the host, by state-dict name. */
export type EditorParams = Record<string, Tensor<"f32">>;

/** Editor parameters as graph values, by state-dict name. */
export type ParamValues = Readonly<Record<string, Value>>;

/** How a parameter is initialised (PyTorch's defaults for its module). */
export type ParamInit =
  | "kaiming_normal"
  | "linear_weight"
  | { readonly linearBias: number }
  | "ones"
  | "zeros";

/** Name, shape and initialiser of one parameter. */
export interface ParamSpec {
  /** State-dict name, e.g. `inpt_extractor.ca_vision_info_ext.q_mlp.weight`. */
  readonly name: string;
  /** Shape. */
  readonly shape: readonly number[];
  /** Initialiser. */
  readonly init: ParamInit;
}

function linearSpecs(name: string, inDim: number, outDim: number): ParamSpec[] {
  return [
    { name: `${name}.weight`, shape: [outDim, inDim], init: "linear_weight" },
    { name: `${name}.bias`, shape: [outDim], init: { linearBias: inDim } },
  ];
}

function layerNormSpecs(name: string, dim: number): ParamSpec[] {
  return [
    { name: `${name}.weight`, shape: [dim], init: "ones" },
    { name: `${name}.bias`, shape: [dim], init: "zeros" },
  ];
}

/** `Attention(inp1_dim, inp2_dim, qk_dim, v_dim)`: q_mlp, k_mlp, v_mlp. */
function attentionSpecs(name: string, inp1: number, inp2: number, qk: number, v: number) {
  return [
    ...linearSpecs(`${name}.q_mlp`, inp1, qk),
    ...linearSpecs(`${name}.k_mlp`, inp2, qk),
    ...linearSpecs(`${name}.v_mlp`, inp2, v),
  ];
}

/** `QVExtractor` (with the vision prototype `vis_rep_prot` when `visProt`). */
function qvExtractorSpecs(name: string, dims: EditorDims, visProt: boolean): ParamSpec[] {
  const { eqeN: e, moduleDim: m, llmMidDim: d } = dims;
  return [
    { name: `${name}.eqe1`, shape: [1, e, m], init: "kaiming_normal" },
    { name: `${name}.eqe2`, shape: [1, e, m], init: "kaiming_normal" },
    ...(visProt
      ? [{ name: `${name}.vis_rep_prot`, shape: [1, dims.visionTokN, d], init: "kaiming_normal" }]
      : []) as ParamSpec[],
    ...layerNormSpecs(`${name}.layer_norm1`, d),
    ...attentionSpecs(`${name}.ca_query_info_ext1`, m, d, m, m),
    ...attentionSpecs(`${name}.ca_vision_info_ext`, m, d, m, m),
    ...layerNormSpecs(`${name}.layer_norm2`, d),
    ...attentionSpecs(`${name}.ca_query_info_ext2`, m, d, m, m),
  ];
}

/** `LowRankGenerator`: `phi`, `ca_lora` (values d→d), `layer_norm`. */
function lowRankGeneratorSpecs(name: string, dims: EditorDims): ParamSpec[] {
  const { loraRank: r, moduleDim: m, llmMidDim: d } = dims;
  return [
    { name: `${name}.phi`, shape: [1, r, m], init: "kaiming_normal" },
    ...attentionSpecs(`${name}.ca_lora`, m, d, m, d),
    ...layerNormSpecs(`${name}.layer_norm`, d),
  ];
}

/** Every parameter of the editor, in state-dict order. */
export function paramSpecs(dims: EditorDims): ParamSpec[] {
  return [
    ...qvExtractorSpecs("edit_extractor", dims, false),
    ...qvExtractorSpecs("inpt_extractor", dims, true),
    ...lowRankGeneratorSpecs("moegen_c", dims),
    ...lowRankGeneratorSpecs("moegen_r", dims),
    ...layerNormSpecs("instant_reps_norm", dims.llmMidDim),
  ];
}

/**
 * Bytes the editor needs on its device (all f32): its weights and `experts` experts
 * (`eqr`, `evr` `[e, m]` and `C`, `R` `[r, d]` each).
 *
 * @example
 * ```ts
 * import { editorBytes } from "./params.ts";
 * const dims = {
 *   llmMidDim: 16, moduleDim: 8, crossAttHeadN: 2, eqeN: 2, loraRank: 2, loraScale: 5,
 *   visionTokN: 3,
 * };
 * if (editorBytes(dims, 1) - editorBytes(dims, 0) !== 4 * (2 * 2 * 8 + 2 * 2 * 16)) throw new Error();
 * ```
 */
export function editorBytes(dims: EditorDims, experts: number): number {
  const params = paramSpecs(dims).reduce((a, s) => a + s.shape.reduce((x, d) => x * d, 1), 0);
  const expert = 2 * dims.eqeN * dims.moduleDim + 2 * dims.loraRank * dims.llmMidDim;
  return 4 * (params + experts * expert);
}

/**
 * Fresh parameters with PyTorch's default initialisation, drawn from `rng` in
 * {@linkcode paramSpecs} order: `eqe1`, `eqe2`, `phi`, `vis_rep_prot` Kaiming-normal
 * (fan-in = product of all dims but the first), Linear weights Kaiming-uniform with
 * a = sqrt(5) (bound 1/sqrt(fan_in)), Linear biases U(±1/sqrt(fan_in)), LayerNorm ones/zeros.
 */
export function initParams(dims: EditorDims, rng: Rng): EditorParams {
  const out: EditorParams = {};
  for (const { name, shape, init } of paramSpecs(dims)) {
    if (init === "kaiming_normal") out[name] = kaimingNormal(shape, rng);
    else if (init === "linear_weight") out[name] = kaimingUniform(shape, rng, Math.sqrt(5));
    else if (init === "ones") out[name] = ones(shape);
    else if (init === "zeros") out[name] = zeros(shape);
    else out[name] = linearBias(shape, init.linearBias, rng);
  }
  return out;
}

/**
 * Throws unless `params` has exactly the parameters of `dims`, each f32 of the right shape;
 * `source` (e.g. a file name) prefixes the error.
 */
export function checkParams(
  params: Readonly<Record<string, Tensor>>,
  dims: EditorDims,
  source: string,
) {
  const specs = paramSpecs(dims);
  const known = new Set(specs.map((s) => s.name));
  for (const { name, shape } of specs) {
    const t = params[name];
    if (t === undefined) throw new Error(`${source}: parameter '${name}' is missing`);
    if (t.dtype !== "f32" || t.shape.join() !== shape.join()) {
      throw new Error(
        `${source}: parameter '${name}' is ${t.dtype}[${t.shape}], expected f32[${shape}]`,
      );
    }
  }
  for (const name of Object.keys(params)) {
    if (!known.has(name)) throw new Error(`${source}: unexpected parameter '${name}'`);
  }
}

/** Declares every parameter as an f32 graph input named by its state-dict name. */
export function paramInputs(g: Graph, dims: EditorDims): ParamValues {
  return Object.fromEntries(paramSpecs(dims).map((s) => [s.name, g.input(s.name, "f32", s.shape)]));
}

/** The value of parameter `name`; throws naming it when the graph has none. */
export function param(p: ParamValues, name: string): Value {
  const v = p[name];
  if (v === undefined) throw new Error(`LiveEdit: parameter '${name}' is not in the graph`);
  return v;
}

/**
 * The editor state as ONE safetensors file, what the authors' evaluation writes with
 * `-saveckpt`: the editor's weights under their own names, the expert pool stacked, and the
 * request of every expert as JSON in `__metadata__`. A repository export
 * ({@linkcode ExpertRepository.export}) is the same file without weights.
 *
 * File contents:
 * - tensors: every editor weight (f32, any name not starting with `pool.`), and
 *   `pool.eqr` `[n, e, m]`, `pool.evr` `[n, e, m]`, `pool.C` `[n, r, d]`, `pool.R` `[n, r, d]`
 *   (f32; expert `k` of the pool is row `k`);
 * - `__metadata__`: `format` = `"liveedit-state"`, `version` = `"1"`, `editor`, `backbone`,
 *   `dims` (JSON `{"e","m","r","d"}`) and `experts` (JSON array, one `{id, time, request}` per
 *   pool row, ids increasing).
 *
 * @module
 */
import { SafetensorsFile, writeSafetensors } from "../../../io/safetensors.ts";
import { Tensor } from "../../../tensor/tensor.ts";
import {
  checkDims,
  checkRequest,
  EXPERT_TENSORS,
  type ExpertDims,
  type ExpertInfo,
  expertShape,
  type ExpertTensorName,
  type ExpertTensors,
} from "./types.ts";
import { checkNamedTensors, type ExpectedShapes } from "../../../io/named_tensors.ts";

/** The `format` metadata value of an editor-state file. */
export const STATE_FORMAT = "liveedit-state";

/**
 * Experts stacked along a leading axis: the {@linkcode ExpertTensors} of `n` experts as
 * `[n, e, m]` (`eqr`, `evr`) and `[n, r, d]` (`C`, `R`); row `k` of each is `experts[k]`.
 */
export interface ExpertBatch extends ExpertTensors {
  /** Id, time and request of each row, ids increasing. */
  readonly experts: readonly ExpertInfo[];
}

/** Everything an editor needs to resume editing or evaluating. */
export interface EditorState {
  /** Editor name (e.g. `"liveedit"`). */
  readonly editor: string;
  /** Backbone the experts were built with (e.g. `"llava-v1.5-7b"`). */
  readonly backbone: string;
  /** Expert dimensions. */
  readonly dims: ExpertDims;
  /** Editor weights under the authors' names (`edit_extractor.…`, `moegen_c.…`, …). */
  readonly weights: Readonly<Record<string, Tensor<"f32">>>;
  /** The expert pool. */
  readonly pool: ExpertBatch;
}

/** What {@linkcode loadEditorState} checks the file against (each check only when given). */
export interface EditorStateExpectations {
  /** The backbone the experts must have been built with. */
  backbone?: string;
  /** The expert dims. */
  dims?: ExpertDims;
  /** Exactly these weight names with these shapes (a record of tensors works). */
  weights?: ExpectedShapes;
}

const POOL_KEY: Readonly<Record<ExpertTensorName, string>> = {
  eqr: "pool.eqr",
  evr: "pool.evr",
  C: "pool.C",
  R: "pool.R",
};

/**
 * Writes `state` to `path` atomically (temporary file, fsync, rename). Throws naming `path`
 * and the key when a weight name starts with `pool.` or a pool tensor is not `[n, …]` for the
 * `n` experts and `dims`.
 *
 * @example
 * ```ts
 * import { loadEditorState, saveEditorState } from "./state.ts";
 * import { Tensor } from "../../../tensor/tensor.ts";
 * const dims = { e: 1, m: 2, r: 1, d: 2 };
 * const z = (...shape: number[]) => new Tensor("f32", shape, new Float32Array(shape[0] * shape[1] * shape[2]));
 * const dir = await Deno.makeTempDir();
 * await saveEditorState(`${dir}/state.safetensors`, {
 *   editor: "liveedit", backbone: "tiny", dims,
 *   weights: { "moegen_c.phi": new Tensor("f32", [1, 1, 2], new Float32Array([1, 2])) },
 *   pool: { experts: [{ id: 1, time: new Date().toISOString(), request: { prompt: "p", target: "t" } }],
 *     eqr: z(1, 1, 2), evr: z(1, 1, 2), C: z(1, 1, 2), R: z(1, 1, 2) },
 * });
 * const back = await loadEditorState(`${dir}/state.safetensors`, { dims });
 * if (back.pool.experts[0].request.target !== "t") throw new Error("round trip");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function saveEditorState(path: string, state: EditorState): Promise<void> {
  const dims = checkDims(state.dims, path);
  const n = state.pool.experts.length;
  const tensors: Record<string, Tensor> = {};
  for (const [key, t] of Object.entries(state.weights)) {
    if (key.startsWith("pool.")) {
      throw new Error(`${path}: weight "${key}" uses the reserved prefix "pool."`);
    }
    tensors[key] = t;
  }
  for (const name of EXPERT_TENSORS) {
    const t = state.pool[name];
    checkPoolTensor(path, POOL_KEY[name], t, [n, ...expertShape(dims, name)]);
    tensors[POOL_KEY[name]] = t;
  }
  const experts = state.pool.experts.map(({ id, time, request }) => ({ id, time, request }));
  checkExperts(path, experts);
  await writeSafetensors(path, tensors, {
    format: STATE_FORMAT,
    version: "1",
    editor: state.editor,
    backbone: state.backbone,
    dims: JSON.stringify(dims),
    experts: JSON.stringify(experts),
  });
}

/**
 * Reads an editor-state file written by {@linkcode saveEditorState} and validates it (format,
 * dims, pool shapes against the expert list, requests, f32 weights) and against `expect`.
 * Every error names `path` and the key or field at fault.
 */
export async function loadEditorState(
  path: string,
  expect: EditorStateExpectations = {},
): Promise<EditorState> {
  const file = await SafetensorsFile.open(path);
  try {
    const meta = file.metadata;
    if (meta.format !== STATE_FORMAT || meta.version !== "1") {
      throw new Error(
        `${path}: not a LiveEdit editor state (metadata format ${
          JSON.stringify(meta.format)
        }, version ${JSON.stringify(meta.version)}; expected "${STATE_FORMAT}", "1")`,
      );
    }
    const dims = checkDims(parseJson(path, "dims", meta.dims), `${path}: metadata`);
    const backbone = meta.backbone ?? "";
    if (expect.backbone !== undefined && backbone !== expect.backbone) {
      throw new Error(
        `${path}: experts were built with backbone "${backbone}", expected "${expect.backbone}"`,
      );
    }
    if (expect.dims !== undefined && EXPERT_DIM_KEYS.some((k) => dims[k] !== expect.dims![k])) {
      throw new Error(
        `${path}: expert dims ${JSON.stringify(dims)} differ from the expected ${
          JSON.stringify(expect.dims)
        }`,
      );
    }
    const rawExperts = parseJson(path, "experts", meta.experts);
    if (!Array.isArray(rawExperts)) throw new Error(`${path}: metadata "experts" is not an array`);
    const experts: ExpertInfo[] = rawExperts.map((x, k) => {
      const where = `${path}: metadata experts[${k}]`;
      return { id: x?.id, time: x?.time, request: checkRequest(x?.request, where) };
    });
    checkExperts(path, experts);
    const pool: Partial<Record<ExpertTensorName, Tensor<"f32">>> = {};
    for (const name of EXPERT_TENSORS) {
      const key = POOL_KEY[name];
      if (!file.has(key)) throw new Error(`${path}: tensor "${key}" is missing`);
      const t = await file.read(key);
      checkPoolTensor(path, key, t, [experts.length, ...expertShape(dims, name)]);
      pool[name] = t as Tensor<"f32">;
    }
    const weights: Record<string, Tensor> = {};
    for (const info of file.tensors()) {
      if (!info.name.startsWith("pool.")) weights[info.name] = await file.read(info.name);
    }
    return {
      editor: meta.editor ?? "",
      backbone,
      dims,
      weights: checkNamedTensors(path, weights, expect.weights),
      pool: { experts, eqr: pool.eqr!, evr: pool.evr!, C: pool.C!, R: pool.R! },
    };
  } finally {
    file.close();
  }
}

const EXPERT_DIM_KEYS = ["e", "m", "r", "d"] as const;

function checkPoolTensor(path: string, key: string, t: unknown, shape: readonly number[]): void {
  if (!(t instanceof Tensor) || t.dtype !== "f32") {
    throw new Error(`${path}: tensor "${key}" must be f32 [${shape.join(", ")}]`);
  }
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new Error(
      `${path}: tensor "${key}" has shape [${t.shape.join(", ")}], expected [${
        shape.join(", ")
      }] (${shape[0]} experts)`,
    );
  }
}

function checkExperts(path: string, experts: readonly ExpertInfo[]): void {
  let last = 0;
  experts.forEach(({ id, time }, k) => {
    if (!Number.isSafeInteger(id) || id <= last) {
      throw new Error(`${path}: experts[${k}].id ${id} is not an integer above ${last}`);
    }
    if (typeof time !== "string" || Number.isNaN(Date.parse(time))) {
      throw new Error(`${path}: experts[${k}].time ${JSON.stringify(time)} is not an ISO time`);
    }
    last = id;
  });
}

function parseJson(path: string, key: string, text: string | undefined): unknown {
  if (text === undefined) throw new Error(`${path}: metadata "${key}" is missing`);
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`${path}: metadata "${key}" is not JSON: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/**
 * The LiveEdit editor on the host: editing (spec §2) appends experts built from a request's
 * layer-`l_e` representation to an {@linkcode ExpertPool}; inference (spec §3) routes a batch
 * of layer-`l_e` outputs through the pool, each input on its own. The backbone stays frozen
 * and is not part of this class: callers hand in the hidden states of layer `l_e` and
 * continue at layer `l_e + 1` from the result.
 *
 * @example
 * ```ts ignore
 * const editor = await LiveEditor.create(cfg.dims, params);
 * const id = await editor.edit(reps, ranges); // reps [1, L, d] of prompt+target at layer l_e
 * const out = await editor.route(hidden, [{ vision: [0, 32], queryEnd: 40 }]);
 * editor.undo(id);
 * ```
 *
 * @module
 */
import { Tensor } from "../../tensor/tensor.ts";
import type { ResidualHook } from "../../models/decoder.ts";
import { f32, output } from "../../runtime/outputs.ts";
import type { EditorDims } from "./config.ts";
import { buildEditGraph, editFeeds } from "./editing.ts";
import { type Expert, ExpertPool } from "./pool.ts";
import { checkParams, type EditorParams, paramInputs } from "./params.ts";
import {
  buildResidualGraph,
  buildRouteGraph,
  gatherRetrieved,
  retrievedFeeds,
  retrievedResidual,
  routeFeeds,
  type RouteInput,
} from "./routing.ts";
import { compileRunner } from "../../graph/runner.ts";
import { type ModelRunner, type Placement, RunStats } from "../../runtime/runner.ts";
import type { Range } from "./tokens.ts";

export type { RouteInput } from "./routing.ts";

/**
 * Options of {@linkcode LiveEditor.create}: where the editor's sessions run (`device`, default
 * `"cpu"`, or a device `worker`) and the initial pool capacity.
 */
export interface LiveEditorOptions extends Placement {
  /** Initial pool capacity (default 16; the pool doubles when full). */
  readonly capacity?: number;
}

/** The result of {@linkcode LiveEditor.route}. */
export interface Routed {
  /** `H' = H + residual`, `[B, L, d]` (the input tensor itself when nothing was routed). */
  readonly output: Tensor<"f32">;
  /** Bool `[B, n]`: which experts each input used (empty when nothing was routed). */
  readonly retrievalMap: Tensor<"bool">;
  /** `[B, n]`: each expert's weight `w_k` (0 for experts not used). */
  readonly fuseCoe: Tensor<"f32">;
}

/**
 * A LiveEdit editor: parameters, an expert pool, and its sessions: editing, routing against
 * the whole pool, and the residual of the retrieved experts only.
 */
export class LiveEditor {
  /** Module sizes. */
  readonly dims: EditorDims;
  /** The experts added so far. */
  readonly pool: ExpertPool;
  /** The runs of the editor's sessions (edit, route, residual): count and fed bytes. */
  readonly stats: RunStats;
  readonly #params: EditorParams;
  readonly #edit: ModelRunner;
  readonly #route: ModelRunner;
  readonly #residual: ModelRunner;

  private constructor(
    dims: EditorDims,
    params: EditorParams,
    pool: ExpertPool,
    runners: { edit: ModelRunner; route: ModelRunner; residual: ModelRunner; stats: RunStats },
  ) {
    this.dims = dims;
    this.#params = params;
    this.pool = pool;
    this.#edit = runners.edit;
    this.#route = runners.route;
    this.#residual = runners.residual;
    this.stats = runners.stats;
  }

  /** The editor's parameters (the tensors it was created with; not copies). */
  get params(): Readonly<EditorParams> {
    return this.#params;
  }

  /** Compiles the edit and route graphs for `params` (checked against `dims`). */
  static async create(
    dims: EditorDims,
    params: EditorParams,
    options: LiveEditorOptions = {},
  ): Promise<LiveEditor> {
    checkParams(params, dims, "LiveEditor.create");
    const stats = new RunStats();
    const { capacity, ...placement } = options;
    const at = (name: string) => ({ ...placement, name, totals: stats });
    const e = buildEditGraph(dims);
    const edit = await compileRunner(e.graph, e.outputs, at("liveedit-edit"));
    const r = buildRouteGraph(dims);
    const { retrieval_map, fuse_coe } = r.outputs;
    const res = buildResidualGraph(dims);
    let route: ModelRunner | undefined;
    try {
      route = await compileRunner(r.graph, { retrieval_map, fuse_coe }, at("liveedit-route"));
      const residual = await compileRunner(
        res.graph,
        { hooked_output: res.hooked_output },
        at("liveedit-residual"),
      );
      const pool = new ExpertPool(dims, capacity);
      return new LiveEditor(dims, params, pool, { edit, route, residual, stats });
    } catch (err) {
      await edit.release();
      await route?.release();
      throw err;
    }
  }

  /**
   * `get_new_edit`: the expert (eqr, evr, C, R) of one request, from its layer-`l_e`
   * representation `reps` `[1, L, d]` of prompt+target and `ranges` (pre-vision, vision,
   * query, answer; see `sequenceParts`). Vision and query must not be empty.
   */
  async newEdit(reps: Tensor<"f32">, ranges: Tensor | readonly Range[]): Promise<Expert> {
    const out = await this.#edit.run({
      ...this.#params,
      ...editFeeds(this.dims, [{ reps, ranges }]),
    });
    const row = (name: string) => f32(out, name).data;
    return { eqr: row("eqr"), evr: row("evr"), moeC: row("moe_c"), moeR: row("moe_r") };
  }

  /** Edits: builds the request's expert and appends it to the pool; returns its id. */
  async edit(reps: Tensor<"f32">, ranges: Tensor | readonly Range[]): Promise<number> {
    return this.pool.add(await this.newEdit(reps, ranges));
  }

  /** Removes the expert of edit `id`; false when there is none. */
  undo(id: number): boolean {
    return this.pool.remove(id);
  }

  /**
   * Inference at the output of layer `l_e`: `hidden` `[B, L, d]` and, per input, where its
   * image and query are. Each input is routed on its own (hard routing against the vision
   * prototype, soft routing, residual); inputs without an image, and every input when the
   * pool is empty, pass through unchanged.
   */
  async route(hidden: Tensor<"f32">, inputs: readonly RouteInput[]): Promise<Routed> {
    const { retrievalMap, fuseCoe } = await this.routing(hidden, inputs);
    const retrieved = gatherRetrieved(this.pool.views(), fuseCoe);
    if (retrieved.rows.length === 0) return { output: hidden, retrievalMap, fuseCoe };
    const out = await this.#residual.run({ ...this.#params, hidden, ...retrievedFeeds(retrieved) });
    return { output: f32(out, "hooked_output"), retrievalMap, fuseCoe };
  }

  /**
   * The routing half of {@linkcode LiveEditor.route}: which experts each input uses and their
   * weights, without the residual.
   */
  async routing(
    hidden: Tensor<"f32">,
    inputs: readonly RouteInput[],
  ): Promise<Omit<Routed, "output">> {
    const [B, , d] = hidden.shape;
    if (hidden.rank !== 3 || d !== this.dims.llmMidDim || inputs.length !== B) {
      throw new Error(
        `LiveEditor.route: hidden must be f32[B, L, ${this.dims.llmMidDim}] with one input per ` +
          `row, got [${hidden.shape}] and ${inputs.length} inputs`,
      );
    }
    const n = this.pool.size;
    if (n === 0 || inputs.every((x) => x.vision == null)) {
      return {
        retrievalMap: new Tensor("bool", [B, n], new Uint8Array(B * n)),
        fuseCoe: new Tensor("f32", [B, n], new Float32Array(B * n)),
      };
    }
    const pool = this.pool.views();
    const routed = await this.#route.run({ ...this.#params, ...routeFeeds(hidden, inputs, pool) });
    return {
      retrievalMap: output(routed, "retrieval_map", "bool"),
      fuseCoe: f32(routed, "fuse_coe"),
    };
  }

  /**
   * The residual of the experts `fuseCoe` `[1, n]` weights (one input's routing), as a hook
   * that a decode step adds at the output of `layer` ({@linkcode ResidualHook}); null when no
   * expert has a weight. The hook holds copies of the experts: later edits do not change it.
   */
  residualHook(layer: number, fuseCoe: Tensor<"f32">): ResidualHook | null {
    const retrieved = gatherRetrieved(this.pool.views(), fuseCoe);
    if (retrieved.rows.length === 0) return null;
    const d = this.dims;
    return {
      layer,
      key: `liveedit-residual:${layer}:${d.eqeN}x${d.moduleDim}:${d.loraRank}x${d.llmMidDim}`,
      apply: (hidden) => retrievedResidual(paramInputs(hidden.graph, d), d, hidden),
      feeds: { ...this.#params, ...retrievedFeeds(retrieved) },
    };
  }

  /** Frees the sessions. */
  async release(): Promise<void> {
    await this.#edit.release();
    await this.#route.release();
    await this.#residual.release();
  }
}

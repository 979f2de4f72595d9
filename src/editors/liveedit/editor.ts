/**
 * The LiveEdit editor: editing (spec §2) appends experts built from a request's layer-`l_e`
 * representation to a {@linkcode SegmentedPool}; inference (spec §3) routes a batch of
 * layer-`l_e` outputs through the pool, each input on its own. The backbone stays frozen and
 * is not part of this class: callers hand in the hidden states of layer `l_e` and continue at
 * layer `l_e + 1` from the result.
 *
 * Where things live. The weights are external initializers of the editor's sessions, read from
 * a safetensors file (the checkpoint they came from, or a copy in the graph cache:
 * `param_file.ts`), so ONNX Runtime folds and prepacks them once instead of taking them as
 * feeds on every run. The experts stay where they were computed: sealed segments are
 * initializers of the pool session, mapped from their files, and only the small tail is fed.
 * A route is two runs — the input's features over the weights, then the pool
 * (`pool_graph.ts`) — and is fed the hidden states, those features and the tail, whatever the
 * pool's size. The pool session is rebuilt when a segment is sealed, or on the first route
 * after an expert of a segment was undone (its `live` mask is a constant of the session).
 *
 * @example
 * ```ts ignore
 * const editor = await LiveEditor.create(cfg.dims, params);
 * const id = await editor.edit(reps, ranges); // reps [1, L, d] of prompt+target at layer l_e
 * const out = await editor.route(hidden, [{ vision: [0, 32], queryEnd: 40 }]);
 * editor.undo(id);
 * await editor.release();
 * ```
 *
 * @module
 */
import { Tensor } from "../../tensor/tensor.ts";
import type { ResidualHook } from "../../models/decoder.ts";
import { f32, output } from "../../runtime/outputs.ts";
import { compileRunner } from "../../graph/runner.ts";
import { type ModelRunner, type Placement, RunStats } from "../../runtime/runner.ts";
import type { EditorDims } from "./config.ts";
import { buildEditGraph, editFeeds } from "./editing.ts";
import { cacheParamFile, openParamFile, paramExternals, type ParamFile } from "./param_file.ts";
import { checkParams, type EditorParams } from "./params.ts";
import { buildPoolGraph, buildQueryGraph, mergeRouting, POOL_OUTPUTS } from "./pool_graph.ts";
import type { Expert } from "./pool.ts";
import { queryFeeds, retrievedResidualInputs, type RouteInput } from "./routing.ts";
import { SegmentedPool } from "./segmented_pool.ts";
import type { Range } from "./tokens.ts";

export type { RouteInput } from "./routing.ts";

/** The result of {@linkcode LiveEditor.route}. */
export interface Routed {
  /** `H' = H + residual`, `[B, L, d]` (the input tensor itself when nothing was routed). */
  readonly output: Tensor<"f32">;
  /** Bool `[B, n]`: which experts each input used (columns in pool order). */
  readonly retrievalMap: Tensor<"bool">;
  /** `[B, n]`: each expert's weight `w_k` (0 for experts not used). */
  readonly fuseCoe: Tensor<"f32">;
}

/** Options of {@linkcode LiveEditor.create}: placement of the sessions, the pool, the weights. */
export interface LiveEditorOptions extends Placement {
  /** Initial capacity of the pool's tail (default 16; it doubles up to a segment). */
  readonly capacity?: number;
  /** Experts per sealed segment of the pool (default 4096). */
  readonly segmentSize?: number;
  /** Where the pool's segment directory is made (default: the system's temporary directory). */
  readonly segmentDir?: string;
  /**
   * A safetensors file that holds exactly these weights (the checkpoint or state file they
   * were read from): the sessions read them there. Default: a copy written once into the
   * graph cache, named by the weights' hash.
   */
  readonly weightsFile?: string;
  /** Graph cache directory (default: the user's graph cache, see `graphCacheRoot`). */
  readonly cacheDir?: string;
}

/**
 * A LiveEdit editor: its weights, its expert pool and its sessions (editing; the input side of
 * routing; the pool). See the module docs.
 */
export class LiveEditor {
  /** Module sizes. */
  readonly dims: EditorDims;
  /** The experts added so far. */
  readonly pool: SegmentedPool;
  /** The runs of the editor's sessions (edit, query, pool): count and fed bytes. */
  readonly stats: RunStats;
  /** The file the sessions read the weights from. */
  readonly paramFile: ParamFile;
  readonly #params: EditorParams;
  readonly #edit: ModelRunner;
  readonly #query: ModelRunner;
  readonly #placement: Placement;
  #poolRunner: { version: number; runner: ModelRunner } | null = null;
  #sealedColumns: { version: number; columns: Int32Array; live: number } | null = null;

  private constructor(
    dims: EditorDims,
    params: EditorParams,
    paramFile: ParamFile,
    pool: SegmentedPool,
    runners: { edit: ModelRunner; query: ModelRunner; stats: RunStats },
    placement: Placement,
  ) {
    this.dims = dims;
    this.#params = params;
    this.paramFile = paramFile;
    this.pool = pool;
    this.#edit = runners.edit;
    this.#query = runners.query;
    this.stats = runners.stats;
    this.#placement = placement;
  }

  /** The editor's weights (the tensors it was created with; not copies). */
  get params(): Readonly<EditorParams> {
    return this.#params;
  }

  /**
   * Compiles the editing and query sessions for `params` (checked against `dims`), reading the
   * weights from `options.weightsFile` or from their copy in the graph cache.
   */
  static async create(
    dims: EditorDims,
    params: EditorParams,
    options: LiveEditorOptions = {},
  ): Promise<LiveEditor> {
    checkParams(params, dims, "LiveEditor.create");
    const { capacity, segmentSize, segmentDir, weightsFile, cacheDir, ...rest } = options;
    const placement: Placement = rest;
    const paramFile = weightsFile === undefined
      ? await cacheParamFile(params, dims, cacheDir)
      : await openParamFile(weightsFile, dims);
    const stats = new RunStats();
    const at = (name: string) => ({ ...placement, name, cacheDir, totals: stats });
    const e = buildEditGraph(dims, paramFile);
    const edit = await compileRunner(e.graph, e.outputs, at("liveedit-edit"));
    let query: ModelRunner | undefined;
    try {
      const q = buildQueryGraph(dims, paramFile);
      query = await compileRunner(q.graph, q.outputs, at("liveedit-query"));
      const expertDims = { e: dims.eqeN, m: dims.moduleDim, r: dims.loraRank, d: dims.llmMidDim };
      const pool = new SegmentedPool(expertDims, { segmentSize, dir: segmentDir, capacity });
      const runners = { edit, query, stats };
      const editor = new LiveEditor(dims, params, paramFile, pool, runners, placement);
      await editor.#poolSession(); // the empty pool's session, so the first route pays nothing
      return editor;
    } catch (err) {
      await edit.release();
      await query?.release();
      throw err;
    }
  }

  /**
   * `get_new_edit`: the expert (eqr, evr, C, R) of one request, from its layer-`l_e`
   * representation `reps` `[1, L, d]` of prompt+target and `ranges` (pre-vision, vision,
   * query, answer; see `sequenceParts`). Vision and query must not be empty.
   */
  async newEdit(reps: Tensor<"f32">, ranges: Tensor | readonly Range[]): Promise<Expert> {
    const out = await this.#edit.run(editFeeds(this.dims, [{ reps, ranges }]));
    const row = (name: string) => f32(out, name).data;
    return { eqr: row("eqr"), evr: row("evr"), moeC: row("moe_c"), moeR: row("moe_r") };
  }

  /** Edits: builds the request's expert and appends it to the pool; returns its id. */
  async edit(reps: Tensor<"f32">, ranges: Tensor | readonly Range[]): Promise<number> {
    return await this.pool.add(await this.newEdit(reps, ranges));
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
    const run = await this.#run(hidden, inputs, POOL_OUTPUTS);
    const [B] = hidden.shape;
    if (run === null) {
      const n = this.pool.size;
      return {
        output: hidden,
        retrievalMap: new Tensor("bool", [B, n], new Uint8Array(B * n)),
        fuseCoe: new Tensor("f32", [B, n], new Float32Array(B * n)),
      };
    }
    const fuse = f32(run.out, "fuse_coe");
    const merged = mergeRouting(output(run.out, "keep", "bool"), fuse, run.columns, run.n);
    const routed = fuse.shape[1] > 0 ? f32(run.out, "hooked_output") : hidden;
    return { output: routed, ...merged };
  }

  /**
   * The residual of the experts one input is routed to (`hidden` `[1, L, d]` at the output of
   * `layer`), as a hook that a decode step adds at the output of `layer`
   * ({@linkcode ResidualHook}); null when no expert is routed. Routing reads only the prompt's
   * vision and query tokens, so the choice holds for every generated token. The hook holds
   * copies of the experts' factors: later edits do not change it.
   */
  async residualHook(
    layer: number,
    hidden: Tensor<"f32">,
    input: RouteInput,
  ): Promise<ResidualHook | null> {
    const run = await this.#run(hidden, [input], ["keep", "fuse_coe"]);
    const fuse = run && f32(run.out, "fuse_coe");
    if (run === null || fuse === null || fuse.shape[1] === 0) return null;
    // the retrieved experts' factors, in slot order (sealed ones read from their files)
    const keep = output(run.out, "keep", "bool").data, k = fuse.shape[1];
    const { loraRank: r, llmMidDim: dm } = this.dims;
    const cs = new Float32Array(k * r * dm), rs = new Float32Array(k * r * dm);
    let j = 0;
    for (let slot = 0; slot < keep.length; slot++) {
      if (keep[slot] === 0) continue;
      const x = await this.pool.slotExpert(slot);
      cs.set(x.moeC, j * r * dm);
      rs.set(x.moeR, j * r * dm);
      j++;
    }
    const d = this.dims, file = this.paramFile;
    return {
      layer,
      key: `liveedit-residual:${layer}:${d.loraRank}x${d.llmMidDim}:${file.path}`,
      apply: (h) => retrievedResidualInputs(paramExternals(h.graph, d, file), d, h),
      feeds: {
        "pool/moe_cs": new Tensor("f32", [k, r * dm], cs),
        "pool/moe_rs": new Tensor("f32", [k, r * dm], rs),
        fuse_coe: fuse,
      },
    };
  }

  /** Frees the sessions and deletes the pool's segment files. */
  async release(): Promise<void> {
    await this.#edit.release();
    await this.#query.release();
    await this.#poolRunner?.runner.release();
    this.#poolRunner = null;
    await this.pool.release();
  }

  /** The two routing runs (null when nothing can be routed); `outputs` of the pool session. */
  async #run(hidden: Tensor<"f32">, inputs: readonly RouteInput[], outputs: readonly string[]) {
    const [B, , d] = hidden.shape;
    if (hidden.rank !== 3 || d !== this.dims.llmMidDim || inputs.length !== B) {
      throw new Error(
        `LiveEditor.route: hidden must be f32[B, L, ${this.dims.llmMidDim}] with one input per ` +
          `row, got [${hidden.shape}] and ${inputs.length} inputs`,
      );
    }
    const n = this.pool.size;
    if (n === 0 || inputs.every((x) => x.vision == null)) return null;
    const q = await this.#query.run(queryFeeds(hidden, inputs));
    const runner = await this.#poolSession();
    const tail = this.pool.tailViews();
    const t = tail.eqr.shape[0], { eqeN, moduleDim, loraRank, llmMidDim } = this.dims;
    const rows = (x: Tensor<"f32">, width: number) => new Tensor("f32", [t, width], x.data);
    const out = await runner.run({
      ivr: q.ivr,
      iqr: q.iqr,
      sim_prot: q.sim_prot,
      hidden,
      "tail/eqr": rows(tail.eqr, eqeN * moduleDim),
      "tail/evr": rows(tail.evr, eqeN * moduleDim),
      "tail/moe_cs": rows(tail.moeCs, loraRank * llmMidDim),
      "tail/moe_rs": rows(tail.moeRs, loraRank * llmMidDim),
    }, outputs);
    return { out, columns: this.#columns(), n };
  }

  /** The pool session of the current segments (rebuilt after a seal or an undo in one). */
  async #poolSession(): Promise<ModelRunner> {
    const version = this.pool.version;
    if (this.#poolRunner?.version === version) return this.#poolRunner.runner;
    await this.pool.check();
    const segments = this.pool.segments.map((s) => ({
      size: s.size,
      parts: s.parts,
      live: s.liveMask(),
    }));
    const { graph, outputs } = buildPoolGraph(this.dims, segments, this.#params);
    const runner = await compileRunner(graph, outputs, {
      ...this.#placement,
      name: "liveedit-pool",
      totals: this.stats,
      externalDataDir: this.pool.directory ?? undefined,
    });
    await this.#poolRunner?.runner.release();
    this.#poolRunner = { version, runner };
    return runner;
  }

  /** The column (live index) of every slot of the pool session: segment rows, then the tail. */
  #columns(): Int32Array {
    const version = this.pool.version;
    if (this.#sealedColumns?.version !== version) {
      const slots = this.pool.segments.reduce((a, s) => a + s.size, 0);
      const columns = new Int32Array(slots);
      let slot = 0, live = 0;
      for (const s of this.pool.segments) {
        for (let row = 0; row < s.size; row++) columns[slot++] = s.isLive(row) ? live++ : -1;
      }
      this.#sealedColumns = { version, columns, live };
    }
    const sealed = this.#sealedColumns;
    const t = this.pool.tail.size;
    const out = new Int32Array(sealed.columns.length + t);
    out.set(sealed.columns);
    for (let i = 0; i < t; i++) out[sealed.columns.length + i] = sealed.live + i;
    return out;
  }
}

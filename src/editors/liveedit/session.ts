/**
 * An editing session: a {@linkcode LiveEditor} whose expert pool mirrors a durable
 * {@linkcode ExpertRepository} (on disk, or in memory for evaluation runs).
 *
 * - {@linkcode EditSession.edit} builds the request's expert, appends it to the repository
 *   (resolving once the record is fsynced: the edit is acknowledged) and then to the pool.
 * - {@linkcode EditSession.undo} writes the tombstone first, then takes exactly that expert out
 *   of the pool by moving the pool's last expert into its row, so the pool stays contiguous
 *   and an undo costs one row copy, not a shift of every later expert;
 *   {@linkcode EditSession.clear} undoes every edit at once.
 * - {@linkcode EditSession.open} fills the pool from the repository (`for await`, id order),
 *   so inference after a restart equals inference before it (up to the summation order of the
 *   residual, as undo may have reordered the pool's rows).
 *
 * The pool stores each expert under its repository id (`ExpertPool.add(expert, id)`), so the
 * pool's id→row index is the map between repository ids and pool slots; nothing else needs
 * to be kept in step. Operations of a session run one after another in call order (a route
 * never sees the pool change under it).
 *
 * {@linkcode EditSession.saveState} / {@linkcode EditSession.loadState} write and read the
 * whole editor state (weights + pool + requests) as one safetensors file (`repository/state.ts`).
 *
 * @example
 * ```ts ignore
 * const repo = await ExpertRepository.open(dir, { init: { backbone: "llava-v1.5-7b", dims } });
 * const session = await EditSession.open(await LiveEditor.create(cfg.dims, params), repo);
 * const id = await session.edit({ prompt, target, image }, reps, ranges); // durable now
 * const { output, expertIds } = await session.route(hidden, [{ vision: [5, 581] }]);
 * await session.undo(id);
 * await session.close(); // closes the repository, frees the editor
 * ```
 *
 * @module
 */
import { Tensor } from "../../tensor/tensor.ts";
import type { ResidualHook } from "../../models/decoder.ts";
import type { Placement } from "../../runtime/runner.ts";
import type { EditorDims } from "./config.ts";
import { LiveEditor, type Routed, type RouteInput } from "./editor.ts";
import { paramSpecs } from "./params.ts";
import { ExpertRepository } from "./repository/repository.ts";
import { loadEditorState, saveEditorState } from "./repository/state.ts";
import type { EditRequest, ExpertDims, ExpertInfo } from "./repository/types.ts";
import type { Expert } from "./pool.ts";
import type { Range } from "./tokens.ts";

/** The result of {@linkcode EditSession.route}. */
export interface SessionRouted extends Routed {
  /** Repository id of each pool row: column `k` of `retrievalMap`/`fuseCoe` is `expertIds[k]`. */
  readonly expertIds: readonly number[];
}

/**
 * Options of {@linkcode EditSession.loadState}: the repository, and where the editor's sessions
 * run (`device`, default `"cpu"`, or a device `worker`).
 */
export interface LoadStateOptions extends Placement {
  /**
   * The repository the state's experts go to (it must be empty of experts for their ids to be
   * kept; see `ExpertRepository.import`). Default: a fresh memory repository.
   */
  readonly repository?: ExpertRepository;
  /** Graph cache directory (default: the user's graph cache). */
  readonly cacheDir?: string;
}

/** The repository's expert dims of editor dims `dims`. */
export function expertDimsOf(dims: EditorDims): ExpertDims {
  return { e: dims.eqeN, m: dims.moduleDim, r: dims.loraRank, d: dims.llmMidDim };
}

/**
 * A {@linkcode LiveEditor} and an {@linkcode ExpertRepository} kept in step: every live edit
 * of the repository is an expert of the pool under the same id, and nothing else is.
 */
export class EditSession {
  /**
   * The editor. Route through the session, and never add to or remove from its pool
   * directly: that would break the pairing with the repository.
   */
  readonly editor: LiveEditor;
  /** The repository. Read it freely; append and undo only through the session. */
  readonly repository: ExpertRepository;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(editor: LiveEditor, repository: ExpertRepository) {
    this.editor = editor;
    this.repository = repository;
  }

  /**
   * A session over `editor` and `repository`, which it owns from then on
   * ({@linkcode EditSession.close} closes both). Fills the editor's pool with every live
   * expert of the repository, in id order. Throws (leaving both to the caller) when their
   * expert dims differ or the editor's pool is not empty.
   */
  static async open(editor: LiveEditor, repository: ExpertRepository): Promise<EditSession> {
    const want = expertDimsOf(editor.dims), have = repository.dims;
    const where = repository.dir ?? "memory repository";
    if ((["e", "m", "r", "d"] as const).some((k) => want[k] !== have[k])) {
      throw new Error(
        `EditSession.open: ${where} holds experts of dims ${JSON.stringify(have)}, ` +
          `the editor makes ${JSON.stringify(want)}`,
      );
    }
    const pool = editor.pool;
    if (pool.size !== 0) {
      throw new Error(`EditSession.open: the editor's pool already holds ${pool.size} experts`);
    }
    pool.reserve(repository.size);
    try {
      for await (const x of repository) {
        await pool.add({ eqr: x.eqr.data, evr: x.evr.data, moeC: x.C.data, moeR: x.R.data }, x.id);
      }
    } catch (error) {
      await pool.clear();
      throw error;
    }
    return new EditSession(editor, repository);
  }

  /**
   * Reads an editor-state file ({@linkcode EditSession.saveState}, or the authors'
   * `-saveckpt` equivalent) for an editor of `dims`: creates the editor with the file's
   * weights, imports the file's experts into `options.repository` (default a fresh memory
   * repository; ids, times and requests kept when it is empty) and opens a session over both.
   * Errors name the file and the tensor or field at fault.
   */
  static async loadState(
    path: string,
    dims: EditorDims,
    options: LoadStateOptions = {},
  ): Promise<EditSession> {
    const weights = Object.fromEntries(paramSpecs(dims).map((s) => [s.name, { shape: s.shape }]));
    const state = await loadEditorState(path, {
      dims: expertDimsOf(dims),
      weights,
      backbone: options.repository?.manifest.backbone,
    });
    const repository = options.repository ?? ExpertRepository.memory({
      backbone: state.backbone,
      dims: state.dims,
      editor: state.editor || undefined,
    });
    const { repository: _, ...placement } = options;
    const editor = await LiveEditor.create(dims, state.weights, {
      ...placement,
      weightsFile: path,
    });
    try {
      await repository.import(path);
      return await EditSession.open(editor, repository);
    } catch (error) {
      await editor.release();
      if (options.repository === undefined) await repository.close();
      throw error;
    }
  }

  /** Number of experts (= live edits of the repository). */
  get size(): number {
    return this.editor.pool.size;
  }

  /** Repository ids of the experts in pool-row order (not id order after an undo). */
  get ids(): readonly number[] {
    return this.editor.pool.ids;
  }

  /** Id, time and request of every live edit, in id order. */
  list(): ExpertInfo[] {
    return this.repository.list();
  }

  /**
   * Edits (spec §2): builds the expert of `request` from its layer-`l_e` representation
   * `reps` `[1, L, d]` of prompt+target and `ranges` (pre-vision, vision, query, answer),
   * appends it to the repository and, once that is acknowledged (fsynced), to the pool.
   * Resolves with the edit's repository id. When anything fails, neither has changed.
   */
  edit(
    request: EditRequest,
    reps: Tensor<"f32">,
    ranges: Tensor | readonly Range[],
  ): Promise<number> {
    return this.append(request, () => this.editor.newEdit(reps, ranges));
  }

  /**
   * Appends the expert that `make` computes for `request` (e.g. in one session with the
   * backbone) as {@linkcode EditSession.edit} does: the repository first (durable), then the
   * pool; when anything fails, neither has changed. Resolves with the edit's repository id.
   */
  append(request: EditRequest, make: () => Promise<Expert>): Promise<number> {
    return this.#run(async () => {
      const expert = await make();
      await this.editor.pool.makeRoom(); // a full tail is sealed before the append, not after
      const { eqeN: e, moduleDim: m, loraRank: r, llmMidDim: d } = this.editor.dims;
      const id = await this.repository.append({
        request,
        eqr: new Tensor("f32", [e, m], expert.eqr),
        evr: new Tensor("f32", [e, m], expert.evr),
        C: new Tensor("f32", [r, d], expert.moeC),
        R: new Tensor("f32", [r, d], expert.moeR),
      });
      await this.editor.pool.add(expert, id);
      return id;
    });
  }

  /**
   * Undoes edit `id`: writes its tombstone (fsynced), then removes exactly its expert from the
   * pool (in the tail, the tail's last expert moves into its row; in a sealed segment, it is
   * masked). Throws, changing nothing, for an id that is not live.
   */
  undo(id: number): Promise<void> {
    return this.#run(async () => {
      await this.repository.undo(id);
      if (!this.editor.pool.remove(id)) {
        throw new Error(`EditSession.undo: edit ${id} was in the repository but not in the pool`);
      }
    });
  }

  /**
   * Undoes every edit: the repository's tombstones first (in a directory: one write, one
   * fsync), then the pool is emptied. Nothing to do when the session holds no edit.
   */
  clear(): Promise<void> {
    return this.#run(async () => {
      await this.repository.undoAll();
      await this.editor.pool.clear();
    });
  }

  /**
   * Inference at the output of layer `l_e` (spec §3) through every expert of the session;
   * see {@linkcode LiveEditor.route}. Also returns the repository id of each pool row.
   */
  route(hidden: Tensor<"f32">, inputs: readonly RouteInput[]): Promise<SessionRouted> {
    return this.#run(async () => {
      const expertIds = this.ids;
      return { ...await this.editor.route(hidden, inputs), expertIds };
    });
  }

  /**
   * The residual hook of the experts one input is routed to, for a decode step at `layer`
   * (see {@linkcode LiveEditor.residualHook}); null when none is routed.
   */
  residualHook(
    layer: number,
    hidden: Tensor<"f32">,
    input: RouteInput,
  ): Promise<ResidualHook | null> {
    return this.#run(() => this.editor.residualHook(layer, hidden, input));
  }

  /**
   * Writes the editor state to `path` atomically: the editor's weights, every expert in id
   * order and its id, time and request (`repository/state.ts`). The experts are taken from
   * the pool, which holds exactly the repository's live edits.
   */
  saveState(path: string): Promise<void> {
    return this.#run(async () => {
      const experts = this.repository.list();
      const { eqeN: e, moduleDim: m, loraRank: r, llmMidDim: d } = this.editor.dims;
      const n = experts.length;
      const stack = (a: number, b: number) =>
        new Tensor("f32", [n, a, b], new Float32Array(n * a * b));
      const out = { eqr: stack(e, m), evr: stack(e, m), C: stack(r, d), R: stack(r, d) };
      for (const [k, { id }] of experts.entries()) {
        const x = await this.editor.pool.get(id);
        out.eqr.data.set(x.eqr, k * e * m);
        out.evr.data.set(x.evr, k * e * m);
        out.C.data.set(x.moeC, k * r * d);
        out.R.data.set(x.moeR, k * r * d);
      }
      const { editor, backbone } = this.repository.manifest;
      await saveEditorState(path, {
        editor,
        backbone,
        dims: this.repository.dims,
        weights: this.editor.params,
        pool: { experts, ...out },
      });
    });
  }

  /** Waits for pending operations, closes the repository and frees the editor. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#queue.catch(() => {});
    try {
      await this.repository.close();
    } finally {
      await this.editor.release();
    }
  }

  /** `await using session = await EditSession.open(...)` closes it at scope end. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new Error("EditSession: the session is closed"));
    const run = this.#queue.then(task);
    this.#queue = run.catch(() => {});
    return run;
  }
}

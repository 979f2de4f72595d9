/**
 * LiveEdit bound to a VLLM as an {@linkcode EditingModel} (what the evaluation and `infer`
 * use). The edited state has one owner: the model's {@linkcode EditSession}, an editor whose
 * pool mirrors an `ExpertRepository` (in memory by default, or a directory the caller opened,
 * where every acknowledged edit is durable).
 *
 * - {@linkcode LiveEditModel.edit} runs the frozen VLLM on `prompt + target` up to and
 *   including layer `l_e` and the editing graph on that output, split into pre-vision / vision
 *   / query / answer (spec §2), in one session (`buildBackboneEditGraph`; when the runner's
 *   first stage ends before `l_e`, the stages, then the editor's own session), and appends the
 *   request's expert to the session ({@linkcode EditSession.append}: the repository, then the
 *   pool).
 * - {@linkcode LiveEditModel.restore} undoes every edit of the session (in a directory: one
 *   durable write of tombstones).
 * - {@linkcode LiveEditModel.predict} runs a batch teacher-forced: layers `0..l_e`, the routed
 *   residual added at the output of layer `l_e` (each input routed on its own: hard routing
 *   against the prototype, soft routing, residual on `instant_reps_norm(H)`; spec §3), layers
 *   `l_e + 1 ..` and the head, then the argmax at the target positions. Inputs without an
 *   image, and every input while the pool is empty, get the unedited backbone's logits.
 *   Examples with and without images run as two batches (a VLLM batch has images on every
 *   row or on none).
 * - {@linkcode LiveEditModel.generate} decodes greedily with the backbone's KV-cached decoder
 *   (`VllmRunner.generateFrom`). Routing reads the prompt's vision and query tokens, which
 *   causal attention leaves unchanged as tokens are appended, so the experts and weights chosen
 *   at the prompt hold for every step: they become a residual hook that each decode step adds
 *   at the output of layer `l_e` (the residual is per position), which is the teacher-forced
 *   computation on prompt + tokens so far at one session run per token. When no expert is
 *   routed (no image, empty pool, or hard routing keeps none) there is no hook.
 *
 * @module
 */
import type { EditingModel, Prediction } from "../api.ts";
import type { Example } from "../../data/sample.ts";
import type { PreparedBatch, Request } from "../../models/vllm/processor.ts";
import type { VllmRunner } from "../../models/vllm/runner.ts";
import type { Tensor } from "../../tensor/tensor.ts";
import { ExpertRepository } from "./repository/repository.ts";
import type { EditRequest } from "./repository/types.ts";
import {
  checkBackbone,
  layerReps,
  requestParts,
  routeInputs,
  rowReps,
  targetPredictions,
} from "./backbone.ts";
import { configJson, type LiveEditConfig } from "./config.ts";
import { buildBackboneEditGraph, editSelectionFeeds } from "./editing.ts";
import { f32 } from "../../runtime/outputs.ts";
import { LiveEditor, type LiveEditorOptions } from "./editor.ts";
import type { EditorParams } from "./params.ts";
import { EditSession, expertDimsOf } from "./session.ts";

/** What {@linkcode LiveEditModel.create} binds together, besides the editor. */
interface ModelParts {
  /** The frozen VLLM's runner (its sessions are reused for every call). */
  readonly runner: VllmRunner;
  /** The editor config (dims, edit layer). */
  readonly config: LiveEditConfig;
  /** Backbone name (`modelName`), e.g. `"blip2-opt-2.7b"`. */
  readonly modelName: string;
  /**
   * Called by {@linkcode LiveEditModel.close} after the session is closed (e.g. closing the
   * runner and the VLLM the caller opened for this model).
   */
  readonly onClose?: () => Promise<void>;
  /** Lines to print when the model is opened (e.g. its placement on the devices). */
  readonly notes?: readonly string[];
}

/** A new editor of `params`, over `repository` (default: a fresh memory repository). */
interface FromParams extends ModelParts {
  /** Editor weights (checked against the config's dims; used as they are, not copied). */
  readonly params: EditorParams;
  /** Options of the editor's sessions (device, initial pool capacity). */
  readonly editor?: LiveEditorOptions;
  /** Where the edits are kept; the model owns it from then on (closes it). */
  readonly repository?: ExpertRepository;
}

/** An opened session (e.g. `EditSession.loadState`); the model owns it from then on. */
interface FromSession extends ModelParts {
  /** The editor and its edits. */
  readonly session: EditSession;
}

/** What {@linkcode LiveEditModel.create} binds together: an editor's weights or a session. */
export type LiveEditModelParts = FromParams | FromSession;

/** The teacher-forced logits of a batch, and which experts each input used. */
export interface EditedLogits {
  /** Logits `[b, T, vocab]` after the routed residual at layer `l_e`. */
  readonly logits: Tensor<"f32">;
  /** Bool `[b, n]`: the experts each input was routed to (`n` = pool size). */
  readonly retrievalMap: Tensor<"bool">;
  /** The prepared VLLM batch (labels, ranges). */
  readonly batch: PreparedBatch;
}

/** LiveEdit on a frozen VLLM (see the module docs). */
export class LiveEditModel implements EditingModel {
  /** Editor name (`-en`). */
  readonly editorName = "liveedit";
  /** Backbone name. */
  readonly modelName: string;
  /** The edited state: the editor and the repository its experts mirror. */
  readonly session: EditSession;
  /** The VLLM runner. */
  readonly runner: VllmRunner;
  /** The editor config. */
  readonly config: LiveEditConfig;
  /** Lines to print when the model is opened (its placement on the devices). */
  readonly notes: readonly string[];
  readonly #layer: number;
  readonly #onClose?: () => Promise<void>;

  private constructor(parts: ModelParts, session: EditSession) {
    this.runner = parts.runner;
    this.notes = parts.notes ?? [];
    this.session = session;
    this.modelName = parts.modelName;
    this.config = parts.config;
    this.#layer = parts.config.editLayerI;
    this.#onClose = parts.onClose;
  }

  /**
   * Binds the session of `parts` (or a new editor of `parts.params` over `parts.repository`,
   * default a fresh memory repository, its pool filled from the repository) to
   * `parts.runner`'s VLLM at the config's edit layer. Throws naming the config field when its
   * `llm_mid_dim` or `edit_layer_i` do not fit the VLLM; then a session or repository given
   * is left to the caller.
   */
  static async create(parts: LiveEditModelParts): Promise<LiveEditModel> {
    checkBackbone(parts.config, parts.runner);
    if ("session" in parts) return new LiveEditModel(parts, parts.session);
    const editor = await LiveEditor.create(parts.config.dims, parts.params, parts.editor);
    const repository = parts.repository ?? ExpertRepository.memory({
      backbone: parts.modelName,
      dims: expertDimsOf(parts.config.dims),
    });
    try {
      return new LiveEditModel(parts, await EditSession.open(editor, repository));
    } catch (error) {
      await editor.release();
      if (parts.repository === undefined) await repository.close();
      throw error;
    }
  }

  /** The editor (route and edit through {@linkcode LiveEditModel.session}). */
  get editor(): LiveEditor {
    return this.session.editor;
  }

  /** The config in the JSON layout of `configs/*.json`, for the evaluation's `config.json`. */
  get editorConfig(): Record<string, unknown> {
    return configJson(this.config);
  }

  /** The edit layer `l_e`. */
  get editLayer(): number {
    return this.#layer;
  }

  /** Number of edits in effect. */
  get size(): number {
    return this.session.size;
  }

  /**
   * Applies one edit (spec §2); the request must have an image. Resolves once the edit is
   * acknowledged by the session's repository (durable in a directory).
   */
  async edit(request: Example | Request): Promise<void> {
    const batch = await this.runner.vllm.prepare([request]);
    const ranges = requestParts(batch, 0, `edit "${request.prompt}"`);
    const image = typeof request.image === "string" ? { image: request.image } : {};
    const record: EditRequest = { prompt: request.prompt, target: request.target, ...image };
    const params = this.editor.paramFile, dims = this.editor.dims, layer = this.#layer;
    const length = batch.lengths[0];
    if (this.runner.stageOf(layer) !== 0) {
      // l_e is on a later stage: the hidden states cross the stages, then the editor's session
      const hidden = await this.runner.hiddenAt(batch, layer);
      await this.session.edit(record, rowReps(hidden, 0, length), ranges);
      return;
    }
    await this.session.append(record, async () => {
      const out = await this.runner.run(
        this.#editKey(),
        () => buildBackboneEditGraph(this.runner.vllm, layer, dims, params),
        { ...batch.feeds, ...editSelectionFeeds([{ ranges, length }], length) },
      );
      const row = (name: string) => f32(out, name).data;
      return { eqr: row("eqr"), evr: row("evr"), moeC: row("moe_c"), moeR: row("moe_r") };
    });
  }

  /**
   * Compiles and loads the sessions that {@linkcode LiveEditModel.edit} and
   * {@linkcode LiveEditModel.predict} run (layers `0..l_e` with and without an image, the rest
   * with the head, the one-session edit), so that the first edit and the first prediction of an
   * evaluation do not pay for it.
   */
  async warmUp(): Promise<void> {
    const layer = this.#layer, n = this.runner.vllm.numLayers;
    for (const image of [true, false]) {
      await this.runner.preload(0, layer + 1, { image, head: false });
    }
    await this.runner.preload(layer + 1, n, { image: false, head: true });
    if (this.runner.stageOf(layer) === 0) {
      const params = this.editor.paramFile, dims = this.editor.dims;
      await this.runner.load(
        this.#editKey(),
        () => buildBackboneEditGraph(this.runner.vllm, layer, dims, params),
      );
    }
  }

  /**
   * Decodes the images of `examples` now, all at once, into the VLLM's image cache (at most
   * half its capacity, so that none of them is evicted before its use).
   */
  async preload(examples: readonly (Example | Request)[]): Promise<void> {
    const cache = this.runner.vllm.images;
    const paths = [
      ...new Set(examples.flatMap((x) => typeof x.image === "string" ? [x.image] : [])),
    ];
    await Promise.all(paths.slice(0, cache.capacity >> 1).map((p) => cache.loadImage(p)));
  }

  /** The runner key of the one-session edit. */
  #editKey(): string {
    return `liveedit-edit:${this.#layer}:${this.editor.paramFile.path}`;
  }

  /** Removes every edit: undoes each edit of the session ({@linkcode EditSession.clear}). */
  async restore(): Promise<void> {
    await this.session.clear();
  }

  /**
   * Logits of one batch of `prompt + target` examples (all with an image or all without) with
   * the routed residual added at the output of layer `l_e`.
   */
  async editedLogits(examples: readonly (Example | Request)[]): Promise<EditedLogits> {
    const { batch, hidden } = await layerReps(this.runner, this.#layer, examples);
    const routed = await this.session.route(hidden, routeInputs(batch));
    const logits = await this.runner.logitsFrom(this.#layer, routed.output, batch.attentionMask);
    return { logits, retrievalMap: routed.retrievalMap, batch };
  }

  /** Teacher-forced predictions, one per example, in order (see the module docs). */
  async predict(examples: readonly (Example | Request)[]): Promise<Prediction[]> {
    const out: Prediction[] = new Array(examples.length);
    const withImage = (x: Example | Request) => x.image !== undefined && x.image !== null;
    for (const images of [true, false]) {
      const rows = examples.flatMap((x, i) => withImage(x) === images ? [i] : []);
      if (rows.length === 0) continue;
      const { logits, batch } = await this.editedLogits(rows.map((i) => examples[i]));
      targetPredictions(logits, batch).forEach((p, k) => (out[rows[k]] = p));
    }
    return out;
  }

  /** Greedy decoding of up to `maxNewTokens` ids (EOS not included; see the module docs). */
  async generate(example: Example | Request, maxNewTokens: number): Promise<number[]> {
    const prompt = await this.runner.vllm.inputs([{ text: example.prompt, image: example.image }]);
    const vision = prompt.vtRange[0];
    let hook = null;
    if (vision !== null && this.editor.pool.size > 0) {
      const hidden = await this.runner.hiddenAt(prompt, this.#layer);
      hook = await this.session.residualHook(this.#layer, hidden, {
        vision,
        queryEnd: prompt.lengths[0],
      });
    }
    const generation = await this.runner.generateFrom(prompt, {
      maxNewTokens,
      ...(hook ? { hook } : {}),
    });
    return [...generation.ids];
  }

  /**
   * Writes the edited state (editor weights + experts + requests, in id order) to one
   * safetensors file atomically ({@linkcode EditSession.saveState}).
   */
  saveState(path: string): Promise<void> {
    return this.session.saveState(path);
  }

  /** Closes the session (its repository, the editor's sessions), then runs `onClose`. */
  async close(): Promise<void> {
    await this.session.close();
    await this.#onClose?.();
  }
}

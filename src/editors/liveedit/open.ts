/**
 * Opening LiveEdit on a VLLM: {@linkcode openLiveEditModel} (an `EditingModel` of `../api.ts`
 * for `test-edit` and `infer`) and {@linkcode createLiveEditTrainer} (an `EditorTrainer` for
 * `train`), each on a VLLM model directory (or an opened {@linkcode Vllm}) with a config
 * (a shipped config's name — `"blip2"`, `"llava"`, `"minigpt4"`, `"tiny"` for `make-tiny`
 * models — or a JSON path).
 *
 * @example
 * ```ts ignore
 * const trainer = await createLiveEditTrainer({ model: "models/blip2-opt-2.7b", config: "blip2", seed: 0 });
 * const losses = await trainer.step(await trainer.prepare(samples), 1e-4);
 * const model = await openLiveEditModel({ model: "models/blip2-opt-2.7b", config: "blip2", weights: "ckpt.safetensors" });
 * await model.edit(sample.request);
 * const [p] = await model.predict([sample.request]);
 * ```
 *
 * @module
 */
import { SafetensorsFile } from "../../io/safetensors.ts";
import { loadVllm, type Vllm, VllmRunner } from "../../models/vllm/mod.ts";
import { DeviceWorker } from "../../runtime/device_worker.ts";
import { Rng } from "../../tensor/rng.ts";
import type { Tensor } from "../../tensor/tensor.ts";
import { type LiveEditConfig, loadConfig } from "./config.ts";
import { LiveEditModel } from "./editing_model.ts";
import type { LiveEditorOptions } from "./editor.ts";
import { checkParams, type EditorParams, initParams, paramSpecs } from "./params.ts";
import { ExpertRepository } from "./repository/repository.ts";
import { EditSession, expertDimsOf } from "./session.ts";
import { LiveEditTrainer } from "./trainer.ts";

/** Where the backbone comes from and how it runs. */
export interface BackboneOptions {
  /** A VLLM model directory, or an opened VLLM (then the caller closes it). */
  readonly model: string | Vllm;
  /**
   * The editor config: a parsed one, a shipped one's name (`"blip2"`, `"llava"`,
   * `"minigpt4"`, `"tiny"`), or the path of a JSON file.
   */
  readonly config: LiveEditConfig | string;
  /** Device of the sessions (default `"cpu"`). */
  readonly device?: string;
  /** Graph cache directory (default: the user's graph cache). */
  readonly cacheDir?: string;
}

/** Options of {@linkcode createLiveEditTrainer}. */
export interface TrainerOptions extends BackboneOptions {
  /** Seed of the initial weights and of the masks and pairs of every step. */
  readonly seed: number;
  /** Initial weights, or a safetensors file holding them (see {@linkcode loadEditorWeights}). */
  readonly weights?: EditorParams | string;
  /**
   * Extra devices (`-edvc`, e.g. `["cuda:1"]` or `["cpu:1"]`) where `prepare` runs the frozen
   * backbone, in turn. With any, every session runs in its device's Worker, so preparing the
   * next batches overlaps the step on `device`.
   */
  readonly extraDevices?: readonly string[];
}

/** Options of {@linkcode openLiveEditModel}. */
export interface ModelOptions extends BackboneOptions {
  /**
   * Trained weights, or a safetensors file holding them (see {@linkcode loadEditorWeights});
   * default: the untrained initialisation from `Rng(seed)`.
   */
  readonly weights?: EditorParams | string;
  /** Seed of the untrained weights when `weights` is absent (default 0). */
  readonly seed?: number;
  /** Backbone name reported as `modelName` (default: the config's `edit_model_name`). */
  readonly modelName?: string;
  /** Options of the editor's sessions (pool capacity). */
  readonly editor?: Omit<LiveEditorOptions, "device">;
  /**
   * Where the edits are kept (the model owns it from then on; its live edits are the model's
   * edits); default: a fresh memory repository.
   */
  readonly repository?: ExpertRepository;
  /**
   * An editor-state file (`saveState`, test-edit's `-saveckpt`) to start from: its weights
   * (instead of `weights`) and its experts, imported into `repository` (which must then hold
   * no edit). Errors name the file and the tensor or field at fault.
   */
  readonly state?: string;
}

/**
 * The editor weights in safetensors file `path`: a training checkpoint's tensors file, an
 * editor-state file (`saveState`), or a converted checkpoint of the authors. Tensors that are
 * not editor weights (`exp_avg.*`, `exp_avg_sq.*`, `pool.*`) are left out; errors name `path`
 * and the missing or misshaped weight.
 *
 * Converting the authors' PyTorch checkpoints (`.pt`, a state dict with the prefixes
 * `edit_extractor.`, `inpt_extractor.`, `moegen_c.`, `moegen_r.`, `instant_reps_norm.`) to
 * safetensors, keys unchanged, with one line of Python:
 * ```sh
 * python -c "import torch, safetensors.torch as st; sd = torch.load('liveedit.pt', map_location='cpu'); st.save_file({k: v.float().contiguous() for k, v in sd.items()}, 'liveedit.safetensors')"
 * ```
 * (If the `.pt` holds a dict around the state dict, index it first, e.g. `sd = sd['model']`.)
 */
export async function loadEditorWeights(
  path: string,
  config: LiveEditConfig,
): Promise<EditorParams> {
  const file = await SafetensorsFile.open(path);
  try {
    const weights: Record<string, Tensor> = {};
    for (const { name } of paramSpecs(config.dims)) {
      if (file.has(name)) weights[name] = await file.read(name);
    }
    checkParams(weights, config.dims, path);
    return weights as EditorParams;
  } finally {
    file.close();
  }
}

/** The opened backbone, its runner and config, and how to close what was opened here. */
async function openBackbone(options: BackboneOptions) {
  const config = await resolveConfig(options.config);
  const owned = typeof options.model === "string";
  const vllm = typeof options.model === "string"
    ? await loadVllm(options.model, { device: options.device })
    : options.model;
  const runner = new VllmRunner(vllm, { device: options.device, cacheDir: options.cacheDir });
  const close = async () => {
    await runner.close();
    if (owned) vllm.close();
  };
  return { config, runner, close };
}

/** A parsed config, or the one a name or path stands for. */
async function resolveConfig(config: LiveEditConfig | string): Promise<LiveEditConfig> {
  if (typeof config !== "string") return config;
  return await loadConfig(config);
}

/** `weights` itself, or the weights in that file. */
function resolveWeights(weights: EditorParams | string, config: LiveEditConfig) {
  return typeof weights === "string" ? loadEditorWeights(weights, config) : weights;
}

/**
 * A LiveEdit trainer on the frozen VLLM of `options.model` (see `trainer.ts`). Its `close()`
 * frees the sessions and closes a model it opened.
 */
export async function createLiveEditTrainer(options: TrainerOptions): Promise<LiveEditTrainer> {
  const extra = options.extraDevices ?? [];
  if (extra.length === 0) {
    const { config, runner, close } = await openBackbone(options);
    return await withCleanup(close, async () => {
      const params = options.weights ? await resolveWeights(options.weights, config) : undefined;
      return LiveEditTrainer.create({ runner, config, seed: options.seed, params, onClose: close });
    });
  }
  const workers: DeviceWorker[] = [];
  const runners: VllmRunner[] = [];
  let owned: Vllm | undefined;
  const close = async () => {
    for (const r of runners) await r.close();
    for (const w of workers) w.close();
    owned?.close();
  };
  return await withCleanup(close, async () => {
    const config = await resolveConfig(options.config);
    const vllm = typeof options.model === "string"
      ? (owned = await loadVllm(options.model, { device: options.device }))
      : options.model;
    for (const device of [options.device ?? "cpu", ...extra]) {
      const worker = await DeviceWorker.open(device);
      workers.push(worker);
      runners.push(new VllmRunner(vllm, { worker, cacheDir: options.cacheDir }));
    }
    const params = options.weights ? await resolveWeights(options.weights, config) : undefined;
    return LiveEditTrainer.create({
      runner: runners[0],
      prepareRunners: runners.slice(1),
      config,
      seed: options.seed,
      params,
      onClose: close,
    });
  });
}

/** Runs `build`; on failure runs `cleanup` and rethrows. */
async function withCleanup<T>(cleanup: () => Promise<void>, build: () => Promise<T>): Promise<T> {
  try {
    return await build();
  } catch (e) {
    await cleanup();
    throw e;
  }
}

/**
 * LiveEdit bound to the VLLM of `options.model` (see `editing_model.ts`), its edits those of
 * `options.repository` (default: none, in memory) or of `options.state`. Its `close()` closes
 * the repository, frees the sessions and closes a model it opened.
 */
export async function openLiveEditModel(options: ModelOptions): Promise<LiveEditModel> {
  const { config, runner, close } = await openBackbone(options);
  return await withCleanup(close, async () => {
    const modelName = options.modelName ?? config.editModelName;
    if (options.state !== undefined) {
      const repository = options.repository ?? ExpertRepository.memory({
        backbone: modelName,
        dims: expertDimsOf(config.dims),
      });
      const session = await EditSession.loadState(options.state, config.dims, {
        repository,
        device: options.device,
      }).catch(async (error) => {
        if (options.repository === undefined) await repository.close();
        throw error;
      });
      return await LiveEditModel.create({ runner, config, modelName, session, onClose: close })
        .catch(async (error) => {
          await session.close();
          throw error;
        });
    }
    const params = options.weights
      ? await resolveWeights(options.weights, config)
      : initParams(config.dims, new Rng(options.seed ?? 0));
    return await LiveEditModel.create({
      runner,
      config,
      params,
      modelName,
      editor: { ...options.editor, device: options.device },
      repository: options.repository,
      onClose: close,
    });
  });
}

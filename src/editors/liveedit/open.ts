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
import { formatPlacement } from "../../models/placement.ts";
import {
  loadVllm,
  type PlacedVllm,
  type PlacementOptions,
  placeVllm,
  reserveFor,
  type Vllm,
} from "../../models/vllm/mod.ts";
import { replicaGroups } from "../../runtime/device.ts";
import type { Placement } from "../../runtime/runner.ts";
import { Rng } from "../../tensor/rng.ts";
import type { Tensor } from "../../tensor/tensor.ts";
import { type LiveEditConfig, loadConfig } from "./config.ts";
import { LiveEditModel } from "./editing_model.ts";
import type { LiveEditorOptions } from "./editor.ts";
import { checkParams, editorBytes, type EditorParams, initParams, paramSpecs } from "./params.ts";
import { ExpertRepository } from "./repository/repository.ts";
import { EditSession, expertDimsOf } from "./session.ts";
import type { LiveEditTrainer } from "./trainer.ts";

/** Sequences the evaluation runs at once (a sample's examples), for the placement's reserve. */
const EVAL_SEQUENCES = 8;

/** Where the backbone comes from and how it is placed on its devices. */
export interface BackboneOptions {
  /** A VLLM model directory, or an opened VLLM (then the caller closes it). */
  readonly model: string | Vllm;
  /**
   * The editor config: a parsed one, a shipped one's name (`"blip2"`, `"llava"`,
   * `"minigpt4"`, `"tiny"`), or the path of a JSON file.
   */
  readonly config: LiveEditConfig | string;
  /**
   * The devices (`-dvc`), in stage order (default `["cpu"]`): with several, the VLLM is split
   * into contiguous stages, one per device (`placeVllm`), and the editor goes with the stage
   * holding the edit layer (or to `placement.editorDevice`).
   */
  readonly devices?: readonly string[];
  /** `--split-layers`, `--max-memory` (one value, or one per device), `--editor-device`. */
  readonly placement?: PlacementOptions;
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
   * Devices of the frozen backbone's data-processing copy (`-edvc`, e.g. `["cuda:2",
   * "cuda:3"]` or `["cpu:1"]`), placed over them as `devices` are (the same `--split-layers`
   * when they are as many; `--max-memory` one value, or one per device of `devices` and then of
   * these): `prepare` runs there, and every session runs in its device's Worker, so preparing
   * the next batches overlaps the step on `devices`. Default: `prepare` uses the training copy.
   */
  readonly extraDevices?: readonly string[];
  /** Samples per batch, for the placement's reserve (default 1). */
  readonly batchSize?: number;
  /**
   * Data-parallel replicas (`train --replicas R`, default 1): `devices` are cut into R equal
   * groups (`replicaGroups`), one copy of the VLLM is placed over each group as `devices`
   * would be (every session in its devices' Workers), each replica steps on its slice of every
   * batch (see `LiveEditTrainerOptions.replicas`) and, without `extraDevices`, the replicas
   * prepare batches in turn. `--editor-device` is for one copy only.
   */
  readonly replicas?: number;
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
  /**
   * Options of the editor's sessions (pool capacity, segment size and directory, the file the
   * weights are read from when `weights` are tensors read from one).
   */
  readonly editor?: Omit<LiveEditorOptions, keyof Placement>;
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
  /** Experts the editor will hold at most, for the placement's estimate (default 0). */
  readonly experts?: number;
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

/** A VLLM opened for a placement: the model's directory loaded once, on the first device. */
async function openVllm(options: BackboneOptions) {
  const config = await resolveConfig(options.config);
  const owned = typeof options.model === "string";
  const vllm = typeof options.model === "string"
    ? await loadVllm(options.model, { device: devicesOf(options)[0] })
    : options.model;
  return { config, vllm, owned };
}

/** `options.devices`, default `["cpu"]`. */
function devicesOf(options: BackboneOptions): readonly string[] {
  return options.devices?.length ? options.devices : ["cpu"];
}

/**
 * The placement lines of `placed`, to print at start: when it uses more than one device or
 * `--max-memory` caps it (one device, uncapped, says nothing new).
 */
function placementNotes(placed: PlacedVllm, what: string): string[] {
  const plan = placed.plan;
  const several = plan.stages.length > 1 || plan.editor?.stage === null;
  if (!several && plan.stages.every((s) => s.maxBytes === null)) return [];
  const [head, ...rest] = formatPlacement(plan);
  return [`${what} ${head}`, ...rest];
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
 * A LiveEdit trainer on the frozen VLLM of `options.model`, placed on `options.devices` (see
 * `trainer.ts`; its step continues the decoder through the stages after the edit layer's).
 * Its `close()` frees the sessions and Workers and closes a model it opened. Throws before
 * loading anything when a placement does not fit `--max-memory`.
 */
export async function createLiveEditTrainer(options: TrainerOptions): Promise<LiveEditTrainer> {
  // Imported here: opening a model to edit (test-edit, infer) loads no training code.
  const { LiveEditTrainer } = await import("./trainer.ts");
  const { TRAIN_GROUPS } = await import("./step_feeds.ts");
  const { config, vllm, owned } = await openVllm(options);
  const opened: PlacedVllm[] = [];
  const close = async () => {
    for (const p of opened) await p.close();
    if (owned) vllm.close();
  };
  return await withCleanup(close, async () => {
    const devices = devicesOf(options), extra = options.extraDevices ?? [];
    const groups = replicaGroups(devices, options.replicas ?? 1);
    if (groups.length > 1 && options.placement?.editorDevice !== undefined) {
      throw new Error(
        `--editor-device ${options.placement.editorDevice} is for one copy of the model; with ` +
          `--replicas ${groups.length} each replica keeps the editor on its stage of the edit layer`,
      );
    }
    const caps = splitCaps(options.placement?.maxMemory, devices.length, extra.length);
    const batch = options.batchSize ?? 1;
    const layer = config.editLayerI;
    const notes: string[] = [];
    const replicas: PlacedVllm[] = [];
    for (const [k, group] of groups.entries()) {
      const placed = await placeVllm(vllm, {
        ...options.placement,
        devices: group,
        maxMemory: caps.main?.length === 1 ? caps.main : caps.main?.slice(
          k * group.length,
          (k + 1) * group.length,
        ),
        // the weights go in and their gradients come out every step
        editor: { layer, bytes: 2 * editorBytes(config.dims, 0) },
        reserve: reserveFor(vllm, TRAIN_GROUPS.length * Math.ceil(batch / groups.length)),
        workers: extra.length > 0 || groups.length > 1,
        cacheDir: options.cacheDir,
      });
      opened.push(placed);
      replicas.push(placed);
      notes.push(...placementNotes(placed, groups.length > 1 ? `replica ${k}` : "training"));
    }
    let prepare: PlacedVllm | undefined;
    if (extra.length > 0) {
      const split = options.placement?.splitLayers;
      prepare = await placeVllm(vllm, {
        devices: extra,
        splitLayers: split?.length === extra.length - 1 ? split : undefined,
        maxMemory: caps.extra,
        reserve: reserveFor(vllm, batch),
        workers: true,
        cacheDir: options.cacheDir,
      });
      opened.push(prepare);
      notes.push(...placementNotes(prepare, "data processing (-edvc)"));
    }
    const params = options.weights ? await resolveWeights(options.weights, config) : undefined;
    const main = replicas[0];
    return LiveEditTrainer.create({
      runner: main.runner,
      replicas: replicas.map((r) => r.runner),
      prepareRunners: prepare
        ? [prepare.runner]
        : groups.length > 1
        ? replicas.map((r) => r.runner)
        : undefined,
      editorDevice: main.plan.editor?.stage === null ? main.editor : undefined,
      config,
      seed: options.seed,
      params,
      notes,
      onClose: close,
    });
  });
}

/**
 * `--max-memory` for the training copy and the data-processing copy: one value for every
 * device, or one per device of both; throws naming the counts otherwise.
 */
function splitCaps(
  caps: readonly number[] | undefined,
  main: number,
  extra: number,
): { main?: readonly number[]; extra?: readonly number[] } {
  if (caps === undefined || caps.length === 1) return { main: caps, extra: caps };
  if (caps.length === main && extra === 0) return { main: caps };
  if (caps.length === main + extra) return { main: caps.slice(0, main), extra: caps.slice(main) };
  throw new Error(
    `--max-memory: ${caps.length} values for ${main} devices (-dvc)` +
      (extra > 0 ? ` and ${extra} (-edvc)` : "") + ": give one for all, or one per device",
  );
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
 * LiveEdit bound to the VLLM of `options.model` placed on `options.devices` (see
 * `editing_model.ts`), its edits those of `options.repository` (default: none, in memory) or
 * of `options.state`. Its `close()` closes the repository, frees the sessions and Workers and
 * closes a model it opened. Throws before loading anything when the placement does not fit
 * `--max-memory`.
 */
export async function openLiveEditModel(options: ModelOptions): Promise<LiveEditModel> {
  const { config, vllm, owned } = await openVllm(options);
  let placed: PlacedVllm | undefined;
  const close = async () => {
    await placed?.close();
    if (owned) vllm.close();
  };
  return await withCleanup(close, async () => {
    placed = await placeVllm(vllm, {
      ...options.placement,
      devices: devicesOf(options),
      editor: { layer: config.editLayerI, bytes: editorBytes(config.dims, options.experts ?? 0) },
      reserve: reserveFor(vllm, EVAL_SEQUENCES),
      cacheDir: options.cacheDir,
    });
    const { runner, editor: where } = placed;
    const notes = placementNotes(placed, "model");
    const modelName = options.modelName ?? config.editModelName;
    if (options.state !== undefined) {
      const repository = options.repository ?? ExpertRepository.memory({
        backbone: modelName,
        dims: expertDimsOf(config.dims),
      });
      const session = await EditSession.loadState(options.state, config.dims, {
        repository,
        ...where,
        cacheDir: options.cacheDir,
      }).catch(async (error) => {
        if (options.repository === undefined) await repository.close();
        throw error;
      });
      return await LiveEditModel.create({
        runner,
        config,
        modelName,
        session,
        notes,
        onClose: close,
      })
        .catch(async (error) => {
          await session.close();
          throw error;
        });
    }
    const params = options.weights
      ? await resolveWeights(options.weights, config)
      : initParams(config.dims, new Rng(options.seed ?? 0));
    const weightsFile = typeof options.weights === "string" ? options.weights : undefined;
    return await LiveEditModel.create({
      runner,
      config,
      params,
      modelName,
      editor: {
        ...(weightsFile === undefined ? {} : { weightsFile }),
        ...options.editor,
        ...where,
        cacheDir: options.editor?.cacheDir ?? options.cacheDir,
      },
      repository: options.repository,
      notes,
      onClose: close,
    });
  });
}

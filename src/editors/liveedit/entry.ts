/**
 * The `liveedit` entry of the editor registry (`../registry.ts`): LiveEdit's setup for the tasks,
 * adapting `createLiveEditTrainer` and `openLiveEditModel` to {@linkcode EditorEntry}.
 *
 * - The editor config is `--editor-config` (a shipped name `blip2`, `llava`, `minigpt4`,
 *   `tiny` for `make-tiny` models, or a JSON path); by default the backbone's shipped config,
 *   picked from the model name (`blip2-opt-2.7b` -> `blip2`) or else the model directory's
 *   `model_type` (`blip-2`, `llava`, `minigpt4`).
 * - The learning rate follows the config (`lrSchedule`).
 * - `-ckpt` weights come from a training checkpoint, checked to be of this editor and model.
 * - `--edits` (infer) is an editor-state file (`-saveckpt` of test-edit, `saveState`), whose
 *   weights and experts are used, or an expert repository directory, whose experts are added
 *   to the `-ckpt` weights' editor.
 *
 * @module
 */
import { statSync } from "node:fs";
import { join } from "node:path";
import type { EditorEntry, ModelSetup, TrainerSetup } from "../api.ts";
import { loadCheckpoint } from "../../train/checkpoint.ts";
import type { Tensor } from "../../tensor/tensor.ts";
import { type LiveEditConfig, loadConfig, lrSchedule } from "./config.ts";
import { createLiveEditTrainer, type LiveEditModel, openLiveEditModel } from "./mod.ts";
import { ExpertRepository } from "./repository/repository.ts";
import { loadEditorState } from "./repository/state.ts";
import { expertDimsOf } from "./session.ts";

/** The shipped config of each backbone `model_type`. */
const CONFIG_OF_TYPE: Readonly<Record<string, string>> = {
  "blip-2": "blip2",
  llava: "llava",
  minigpt4: "minigpt4",
};

/** The shipped config of each full backbone name. */
const CONFIG_OF_NAME: Readonly<Record<string, string>> = {
  "blip2-opt-2.7b": "blip2",
  "llava-v1.5-7b": "llava",
  "minigpt-4-vicuna-7b": "minigpt4",
};

/**
 * The parsed LiveEdit config for `setup`: `setup.editorConfig`, else by model name, else by
 * the model directory's `model_type`. Throws naming the model directory when none applies.
 */
export async function liveEditConfigOf(
  setup: { readonly modelDir: string; readonly modelName: string; readonly editorConfig?: string },
): Promise<LiveEditConfig> {
  let name = setup.editorConfig ?? CONFIG_OF_NAME[setup.modelName];
  if (name === undefined) {
    const file = join(setup.modelDir, "config.json");
    const type = JSON.parse(await Deno.readTextFile(file)).model_type;
    name = CONFIG_OF_TYPE[type];
    if (name === undefined) {
      throw new Error(
        `${file}: model_type ${JSON.stringify(type)} has no LiveEdit config; pass --editor-config`,
      );
    }
  }
  return await loadConfig(name);
}

async function createTrainer(setup: TrainerSetup) {
  const config = await liveEditConfigOf(setup);
  const trainer = await createLiveEditTrainer({
    model: setup.modelDir,
    config,
    device: setup.device,
    extraDevices: setup.extraDevices,
    seed: setup.seed,
  });
  const notes = setup.extraDevices.length > 0
    ? [`the frozen backbone prepares batches on ${setup.extraDevices.join(" ")}`]
    : [];
  return { trainer, schedule: lrSchedule(config.train), config, notes };
}

async function openModel(setup: ModelSetup) {
  const config = await liveEditConfigOf(setup);
  const isDir = (p: string) => {
    try {
      return statSync(p).isDirectory();
    } catch {
      return false;
    }
  };
  const state = setup.edits && !isDir(setup.edits)
    ? await loadEditorState(setup.edits, {
      backbone: setup.modelName,
      dims: expertDimsOf(config.dims),
    })
    : undefined;
  let weights: Record<string, Tensor<"f32">> | undefined = state?.weights as
    | Record<string, Tensor<"f32">>
    | undefined;
  if (weights === undefined && setup.checkpoint !== null) {
    weights = (await loadCheckpoint(setup.checkpoint, { model: setup.checkpointModel })).weights;
  }
  if (weights === undefined) {
    throw new Error("liveedit needs trained weights: pass -ckpt (or --edits with a state file)");
  }
  const model = await openLiveEditModel({
    model: setup.modelDir,
    config,
    device: setup.device,
    weights,
    modelName: setup.modelName,
  });
  try {
    if (state !== undefined) addStateExperts(model, state.pool);
    else if (setup.edits) await addRepositoryExperts(model, setup.edits, setup.modelName);
  } catch (error) {
    await model.close();
    throw error;
  }
  return model;
}

/** Adds the experts of a state file's pool (`[n, ...]` tensors) to the model's editor. */
function addStateExperts(
  model: LiveEditModel,
  pool: Awaited<ReturnType<typeof loadEditorState>>["pool"],
): void {
  const n = pool.experts.length;
  const row = (t: Tensor<"f32">, k: number) => {
    const w = t.data.length / n;
    return t.data.slice(k * w, (k + 1) * w);
  };
  model.editor.pool.reserve(n);
  pool.experts.forEach((e, k) =>
    model.editor.pool.add(
      { eqr: row(pool.eqr, k), evr: row(pool.evr, k), moeC: row(pool.C, k), moeR: row(pool.R, k) },
      e.id,
    )
  );
}

/** Adds the live experts of the repository in `dir` to the model's editor. */
async function addRepositoryExperts(model: LiveEditModel, dir: string, backbone: string) {
  const repo = await ExpertRepository.open(dir);
  try {
    if (repo.manifest.backbone !== backbone) {
      throw new Error(
        `${dir}: experts were built with backbone "${repo.manifest.backbone}", expected "${backbone}"`,
      );
    }
    const want = expertDimsOf(model.editor.dims), have = repo.dims;
    if ((["e", "m", "r", "d"] as const).some((k) => want[k] !== have[k])) {
      throw new Error(
        `${dir}: experts of dims ${JSON.stringify(have)}, the editor makes ${JSON.stringify(want)}`,
      );
    }
    model.editor.pool.reserve(repo.size);
    for await (const x of repo) {
      model.editor.pool.add(
        { eqr: x.eqr.data, evr: x.evr.data, moeC: x.C.data, moeR: x.R.data },
        x.id,
      );
    }
  } finally {
    await repo.close();
  }
}

/** The `liveedit` registry entry. */
export const LIVEEDIT: EditorEntry = {
  description: "LiveEdit (CVPR 2025): low-rank mixture of editing experts",
  createTrainer,
  openModel,
};

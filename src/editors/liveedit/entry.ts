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
 *   weights and experts are used, or an expert repository directory, whose live experts are
 *   the edits of the `-ckpt` weights' editor (the model's session opens over it).
 * - `editsDir` (`test-edit --edits-dir`) is a directory where a new durable expert repository
 *   keeps the run's edits.
 *
 * @module
 */
import { statSync } from "node:fs";
import { join } from "node:path";
import type { EditorEntry, ModelSetup, TrainerSetup } from "../api.ts";
import { backboneOf, BACKBONES } from "../../models/backbones.ts";
import { loadCheckpoint } from "../../train/checkpoint.ts";
import type { Tensor } from "../../tensor/tensor.ts";
import { type LiveEditConfig, loadConfig, lrSchedule } from "./config.ts";
import { createLiveEditTrainer, openLiveEditModel } from "./open.ts";
import { ExpertRepository } from "./repository/repository.ts";
import { expertDimsOf } from "./session.ts";

/**
 * The shipped LiveEdit config of a backbone, from the backbone table (`models/backbones.ts`):
 * the row of its full name, else the row of its model directory's `model_type`. Throws naming
 * the directory's `config.json` when neither has one.
 */
async function shippedConfigOf(modelName: string, modelDir: string): Promise<string> {
  const byName = BACKBONES.find((b) => b.displayNames.includes(modelName));
  if (byName !== undefined) return byName.editorConfig;
  const file = join(modelDir, "config.json");
  const type = JSON.parse(await Deno.readTextFile(file)).model_type;
  const byType = backboneOf(type);
  if (byType === undefined) {
    throw new Error(
      `${file}: model_type ${JSON.stringify(type)} has no LiveEdit config; pass --editor-config`,
    );
  }
  return byType.editorConfig;
}

/**
 * The parsed LiveEdit config for `setup`: `setup.editorConfig`, else the backbone's shipped
 * config ({@linkcode shippedConfigOf}).
 */
async function liveEditConfigOf(
  setup: { readonly modelDir: string; readonly modelName: string; readonly editorConfig?: string },
): Promise<LiveEditConfig> {
  return await loadConfig(
    setup.editorConfig ?? await shippedConfigOf(setup.modelName, setup.modelDir),
  );
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

/**
 * The edited model of `setup`: `-ckpt` weights, or a state file's weights and experts
 * (`--edits FILE`); the edits kept in a new durable repository (`editsDir`), an existing one
 * (`--edits DIR`), or in memory.
 */
async function openModel(setup: ModelSetup) {
  const config = await liveEditConfigOf(setup);
  const edits = setup.edits ?? undefined;
  const editsRepository = edits !== undefined && isDirectory(edits);
  const state = edits !== undefined && !editsRepository ? edits : undefined;
  let weights: Record<string, Tensor<"f32">> | undefined;
  if (state === undefined) {
    if (setup.checkpoint === null) {
      throw new Error("liveedit needs trained weights: pass -ckpt (or --edits with a state file)");
    }
    weights = (await loadCheckpoint(setup.checkpoint, { model: setup.checkpointModel })).weights;
  }
  const repository = setup.editsDir !== undefined
    ? await ExpertRepository.open(setup.editsDir, {
      init: { backbone: setup.modelName, dims: expertDimsOf(config.dims) },
    })
    : editsRepository
    ? await openRepository(edits!, setup.modelName)
    : undefined;
  try {
    return await openLiveEditModel({
      model: setup.modelDir,
      config,
      device: setup.device,
      weights,
      modelName: setup.modelName,
      repository,
      state,
    });
  } catch (error) {
    await repository?.close();
    throw error;
  }
}

/** The expert repository in `dir`, checked to hold experts of `backbone`. */
async function openRepository(dir: string, backbone: string): Promise<ExpertRepository> {
  const repo = await ExpertRepository.open(dir);
  if (repo.manifest.backbone !== backbone) {
    await repo.close();
    throw new Error(
      `${dir}: experts were built with backbone "${repo.manifest.backbone}", expected "${backbone}"`,
    );
  }
  return repo;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** The `liveedit` registry entry. */
export const LIVEEDIT: EditorEntry = {
  description: "LiveEdit (CVPR 2025): low-rank mixture of editing experts",
  createTrainer,
  openModel,
};

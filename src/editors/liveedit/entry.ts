/**
 * The `liveedit` entry of the editor registry (`../registry.ts`): LiveEdit's setup for the tasks,
 * adapting `createLiveEditTrainer` and `openLiveEditModel` to {@linkcode EditorEntry}.
 *
 * - The editor config is the one the checkpoint (`-ckpt`, `-lkpt`) stores, `--editor-config`
 *   (a shipped name `blip2`, `llava`, `minigpt4`, `tiny` for `make-tiny` models, or a JSON path)
 *   overriding it, or by default the backbone's shipped config (`run_config.ts`). The trainer
 *   returns it resolved, in the JSON layout, for the run's `config.json` and its checkpoints.
 * - `--edit-layer-twice` (kept when resuming a run trained so) sets `train.editLayerTwice`:
 *   the released code's training (spec §4, "Known flaw").
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
import { loadCheckpoint } from "../../train/checkpoint.ts";
import type { Tensor } from "../../tensor/tensor.ts";
import { configJson, lrSchedule } from "./config.ts";
import { createLiveEditTrainer, openLiveEditModel } from "./open.ts";
import { resolveRunConfig } from "./run_config.ts";
import { ExpertRepository } from "./repository/repository.ts";
import { expertDimsOf } from "./session.ts";

async function createTrainer(setup: TrainerSetup) {
  const { config: chosen, stored } = await resolveRunConfig(setup);
  const twice = setup.editLayerTwice === true || stored?.train.editLayerTwice === true ||
    chosen.train.editLayerTwice;
  const config = { ...chosen, train: { ...chosen.train, editLayerTwice: twice } };
  const trainer = await createLiveEditTrainer({
    model: setup.modelDir,
    config,
    devices: setup.devices,
    extraDevices: setup.extraDevices,
    placement: setup.placement,
    batchSize: setup.batchSize,
    seed: setup.seed,
    replicas: setup.replicas,
  });
  const notes = [...trainer.notes];
  if (setup.extraDevices.length > 0) {
    notes.push(`the frozen backbone prepares batches on ${setup.extraDevices.join(",")}`);
  }
  if (twice) {
    notes.push(
      stored !== undefined && !stored.train.editLayerTwice
        ? "the resumed run trained in one pass; from here on layer l_e is applied twice " +
          "(--edit-layer-twice, the released code's training)"
        : "training as the released code does: layer l_e applied twice (--edit-layer-twice)",
    );
  }
  if (trainer.replicas.length > 1) {
    notes.push(
      `data parallel: ${trainer.replicas.length} replicas, each a slice of every batch; ` +
        "gradients averaged on the host in replica order",
    );
  }
  // the data-processing copies' stages work on as many batches at once
  const prepareConcurrency = trainer.prepareRunners.length *
    trainer.prepareRunners[0].stages.length;
  return {
    trainer,
    schedule: lrSchedule(config.train),
    config: configJson(config),
    notes,
    prepareConcurrency,
  };
}

/**
 * The edited model of `setup`: `-ckpt` weights, or a state file's weights and experts
 * (`--edits FILE`); the edits kept in a new durable repository (`editsDir`; removed again when
 * the model fails to open), an existing one (`--edits DIR`), or in memory.
 */
async function openModel(setup: ModelSetup) {
  const { config } = await resolveRunConfig(setup);
  const edits = setup.edits ?? undefined;
  const editsRepository = edits !== undefined && isDirectory(edits);
  const state = edits !== undefined && !editsRepository ? edits : undefined;
  let weights: Record<string, Tensor<"f32">> | undefined, weightsFile: string | undefined;
  if (state === undefined) {
    if (setup.checkpoint === null) {
      throw new Error("liveedit needs trained weights: pass -ckpt (or --edits with a state file)");
    }
    const ckpt = await loadCheckpoint(setup.checkpoint, { model: setup.checkpointModel });
    weights = ckpt.weights;
    weightsFile = ckpt.tensorsPath; // the sessions read the weights in the checkpoint itself
  }
  const fresh = setup.editsDir === undefined ? undefined : freshness(setup.editsDir);
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
      devices: setup.devices,
      placement: setup.placement,
      experts: setup.placement?.experts,
      weights,
      modelName: setup.modelName,
      repository,
      state,
      editor: weightsFile === undefined ? undefined : { weightsFile },
    });
  } catch (error) {
    await repository?.close();
    if (fresh !== undefined) await removeCreated(setup.editsDir!, fresh);
    throw error;
  }
}

/**
 * Whether `dir` is missing or empty, so that a repository opened there is new and, if the
 * model fails to open, removed (leaving `dir` as it was); undefined when it holds anything.
 */
function freshness(dir: string): "missing" | "empty" | undefined {
  try {
    for (const _ of Deno.readDirSync(dir)) return undefined;
    return "empty";
  } catch (error) {
    return error instanceof Deno.errors.NotFound ? "missing" : undefined;
  }
}

/** Removes what opening a repository in `dir` created: `dir` itself, or what it holds. */
async function removeCreated(dir: string, was: "missing" | "empty"): Promise<void> {
  if (was === "missing") return await Deno.remove(dir, { recursive: true });
  for (const { name } of [...Deno.readDirSync(dir)]) {
    await Deno.remove(join(dir, name), { recursive: true });
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

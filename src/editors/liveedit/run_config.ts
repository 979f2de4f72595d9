/**
 * Which LiveEdit config a task runs with ({@linkcode resolveRunConfig}). A run carries its
 * config: `train` stores the resolved config (the JSON layout of `configs/*.json`) in the run's
 * `config.json` and in every checkpoint, so `test-edit`, `infer` and `train -lkpt` open a
 * checkpoint without naming it again. In order:
 *
 * 1. `--editor-config` (a shipped name or a JSON path) overrides; with a checkpoint that
 *    stores its config, its dims must be the stored ones (the weights were trained with them);
 * 2. the config stored in the checkpoint (`-ckpt`, `-lkpt`);
 * 3. the backbone's shipped config, from the backbone table (`models/backbones.ts`): the row
 *    of the model's full name (`blip2-opt-2.7b`), else of its directory's `model_type` — for
 *    untrained runs and checkpoints of older versions, which stored none.
 *
 * Whether the config fits the model (hidden size, edit layer) is checked when the model is
 * opened (`checkBackbone`), naming where the config came from (`LiveEditConfig.source`: the
 * file or the checkpoint) and the model directory.
 *
 * @module
 */
import { join } from "node:path";
import { readJsonObject } from "../../io/json.ts";
import { backboneByName, backboneOf } from "../../models/backbones.ts";
import { checkpointEditorConfig } from "../../train/checkpoint.ts";
import {
  DIM_FIELDS,
  type EditorDims,
  type LiveEditConfig,
  loadConfig,
  parseConfig,
} from "./config.ts";

/** What {@linkcode resolveRunConfig} chooses from. */
export interface RunConfigChoice {
  /** The backbone's model directory. */
  readonly modelDir: string;
  /** The backbone's name (`blip2-opt-2.7b`, or the directory's name). */
  readonly modelName: string;
  /** `--editor-config`: a shipped config's name or a JSON path. */
  readonly editorConfig?: string;
  /** A checkpoint's JSON (`-ckpt`, `-lkpt`) whose stored config is the default. */
  readonly checkpoint?: string | null;
}

/** The resolved config and the config stored in the checkpoint, if any. */
export interface ResolvedRunConfig {
  /** The config to run with. */
  readonly config: LiveEditConfig;
  /** The config stored in the checkpoint (undefined without one, or for older checkpoints). */
  readonly stored?: LiveEditConfig;
}

/**
 * The config of `choice` (see the module docs). Throws naming the `--editor-config` file, the
 * checkpoint and each dim when an override does not fit the checkpoint's weights, naming the
 * checkpoint and the field when its stored config is malformed, and naming the model's
 * `config.json` when no config is shipped for its `model_type`.
 */
export async function resolveRunConfig(choice: RunConfigChoice): Promise<ResolvedRunConfig> {
  const checkpoint = choice.checkpoint ?? undefined;
  const json = checkpoint === undefined ? undefined : await checkpointEditorConfig(checkpoint);
  const stored = json === undefined
    ? undefined
    : parseConfig(json, `stored in checkpoint ${checkpoint}`);
  if (choice.editorConfig !== undefined) {
    const config = await loadConfig(choice.editorConfig);
    if (stored !== undefined) checkDimsFit(config, stored, checkpoint!);
    return { config, stored };
  }
  if (stored !== undefined) return { config: stored, stored };
  return { config: await loadConfig(await shippedConfigOf(choice.modelName, choice.modelDir)) };
}

/** Throws naming each dim of `config` that differs from the checkpoint's `stored` config. */
function checkDimsFit(config: LiveEditConfig, stored: LiveEditConfig, checkpoint: string): void {
  const differ = (Object.keys(DIM_FIELDS) as (keyof EditorDims)[])
    .filter((k) => config.dims[k] !== stored.dims[k])
    .map((k) => `${DIM_FIELDS[k]} ${config.dims[k]} (trained with ${stored.dims[k]})`);
  if (differ.length > 0) {
    throw new Error(
      `--editor-config ${config.source}: its dims do not fit the weights of checkpoint ` +
        `${checkpoint}: ${differ.join(", ")}; leave --editor-config out to use the stored config`,
    );
  }
}

/**
 * The name of the shipped LiveEdit config of a backbone: the row of its name (full or short),
 * else the row of its model directory's `model_type`. Throws naming the directory's
 * `config.json` when neither has one, or when it is missing or malformed.
 */
async function shippedConfigOf(modelName: string, modelDir: string): Promise<string> {
  const byName = backboneByName(modelName);
  if (byName !== undefined) return byName.editorConfig;
  const file = join(modelDir, "config.json");
  const type = (await readJsonObject(file)).model_type;
  const byType = typeof type === "string" ? backboneOf(type) : undefined;
  if (byType === undefined) {
    throw new Error(
      `${file}: model_type ${JSON.stringify(type)} has no LiveEdit config; pass --editor-config`,
    );
  }
  return byType.editorConfig;
}

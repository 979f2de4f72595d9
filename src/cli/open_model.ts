/**
 * Opening the edited model that `test-edit` and `infer` run: the `-ckpt` checkpoint, the
 * backbone's tokenizer and the editor's {@linkcode EditingModel}.
 *
 * @module
 */
import { resolve } from "node:path";
import type { EditingModel, PlacementSetup } from "../editors/api.ts";
import { type HfTokenizer, loadTokenizer } from "../io/tokenizer.ts";
import { checkpointModelId, findCheckpoint } from "../train/records.ts";
import type { TaskTarget } from "./task.ts";

/** How {@linkcode openEditingModel} opens the model. */
export interface OpenEditingOptions {
  /** The devices (`-dvc`). */
  readonly devices: readonly string[];
  /** How the backbone is placed on them. */
  readonly placement?: PlacementSetup;
  /** `-ckpt`: a checkpoint, a `checkpoints/` directory or a run directory; relative to `cwd`. */
  readonly ckpt: string | undefined;
  /** The working directory. */
  readonly cwd: string;
  /** `--editor-config`. */
  readonly editorConfig?: string;
  /** Edits to start from (an expert repository or a saved state file). */
  readonly edits?: string | null;
  /** Gets a line saying which checkpoint was picked when `ckpt` named none directly. */
  readonly note?: (line: string) => void;
  /** Where the model keeps its edits durably (`--edits-dir`). */
  readonly editsDir?: string;
}

/** The opened model, its tokenizer and the checkpoint file it loaded. */
export interface OpenedEditingModel {
  /** The edited model. */
  readonly editing: EditingModel;
  /** The backbone's tokenizer (for decoding predictions). */
  readonly tokenizer: HfTokenizer;
  /** The checkpoint's JSON file, or null without `-ckpt`. */
  readonly checkpoint: string | null;
}

/**
 * The checkpoint file that `-ckpt` (relative to `cwd`) names for `target`'s editor, or null
 * without `-ckpt`. An editor without training (no `createTrainer`, e.g. `none`) loads no
 * checkpoint: a `-ckpt` is ignored, with a note.
 */
export async function resolveCheckpoint(
  target: Pick<TaskTarget, "editorName" | "entry">,
  ckpt: string | undefined,
  cwd: string,
  note?: (line: string) => void,
): Promise<string | null> {
  if (ckpt === undefined) return null;
  if (target.entry.createTrainer === undefined) {
    note?.(`editor ${target.editorName} has no trained weights: -ckpt ${ckpt} is ignored`);
    return null;
  }
  return await findCheckpoint(resolve(cwd, ckpt), note);
}

/**
 * Finds the checkpoint ({@linkcode resolveCheckpoint}), loads the tokenizer and opens
 * `target`'s edited model.
 */
export async function openEditingModel(
  target: Pick<TaskTarget, "editorName" | "entry" | "model">,
  o: OpenEditingOptions,
): Promise<OpenedEditingModel> {
  const { editorName, entry, model } = target;
  const checkpoint = await resolveCheckpoint(target, o.ckpt, o.cwd, o.note);
  const tokenizer = await loadTokenizer(model.dir);
  const editing = await entry.openModel({
    modelDir: model.dir,
    modelName: model.name,
    devices: o.devices,
    placement: o.placement,
    checkpoint,
    checkpointModel: checkpointModelId(editorName, model.name),
    editorConfig: o.editorConfig,
    edits: o.edits,
    editsDir: o.editsDir,
  });
  return { editing, tokenizer, checkpoint };
}

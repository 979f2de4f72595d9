/**
 * The editors the tasks know by name (`-en`): each entry builds a trainer
 * ({@linkcode EditorTrainer}) for `deno task train` and an editing model
 * ({@linkcode EditingModel}) for `deno task test-edit` and `deno task infer`. The tasks see only
 * these two interfaces (`src/editors/api.ts`); another editor plugs in by adding an entry.
 *
 * @module
 */
import type { EditingModel, EditorTrainer } from "../editors/api.ts";
import type { Schedule } from "../train/schedule.ts";
import { LIVEEDIT } from "./liveedit.ts";

/** What a trainer is built from. */
export interface TrainerSetup {
  /** The backbone's model directory. */
  readonly modelDir: string;
  /** The backbone's name (`blip2-opt-2.7b`, or the directory's name). */
  readonly modelName: string;
  /** The training device (`-dvc`). */
  readonly device: string;
  /** Devices for the frozen backbone's `prepare` (`-edvc`); empty: the training device. */
  readonly extraDevices: readonly string[];
  /** The run's seed (`-rs`): initial weights and the trainer's own randomness. */
  readonly seed: number;
  /** Samples per batch (`-bs`). */
  readonly batchSize: number;
  /** The editor's config (`--editor-config`: a name or a path); default: the editor's choice. */
  readonly editorConfig?: string;
}

/** A trainer with what the loop needs to run it. */
export interface TrainerSession {
  /** The trainer, with freshly initialised (seeded) weights. */
  readonly trainer: EditorTrainer;
  /** The learning rate by zero-based step. */
  readonly schedule: Schedule;
  /** The editor's settings, recorded in the run's `config.json`. */
  readonly config: unknown;
  /** How many `prepare` calls may run at once (default 1; e.g. one per extra device). */
  readonly prepareConcurrency?: number;
  /** Lines the task prints before training (e.g. settings the editor does not use). */
  readonly notes?: readonly string[];
}

/** What an editing model is opened from. */
export interface ModelSetup {
  /** The backbone's model directory. */
  readonly modelDir: string;
  /** The backbone's name. */
  readonly modelName: string;
  /** The device (`-dvc`). */
  readonly device: string;
  /** A training checkpoint's JSON (`-ckpt`), or null for an editor that needs no training. */
  readonly checkpoint: string | null;
  /** The model id the checkpoint must carry (`<editor>/<model>`). */
  readonly checkpointModel: string;
  /** Edits to start from: an expert repository directory or a saved state file. */
  readonly edits?: string | null;
  /** The editor's config (`--editor-config`: a name or a path); default: the editor's choice. */
  readonly editorConfig?: string;
}

/** One editor. */
export interface EditorEntry {
  /** A line for `--help`. */
  readonly description: string;
  /** Builds a trainer; absent for an editor without training. */
  readonly createTrainer?: (setup: TrainerSetup) => Promise<TrainerSession>;
  /** Opens the backbone with the editor in front of it. */
  readonly openModel: (setup: ModelSetup) => Promise<EditingModel>;
}

/** Editors by `-en` name (lower case). */
export type EditorRegistry = Readonly<Record<string, EditorEntry>>;

/** The editor `name` of `registry` (case-insensitive); throws listing the known names. */
export function editorEntry(registry: EditorRegistry, name: string): EditorEntry {
  const entry = registry[name.toLowerCase()];
  if (entry === undefined) {
    throw new Error(
      `unknown editor ${JSON.stringify(name)} (valid: ${Object.keys(registry).join(", ")})`,
    );
  }
  return entry;
}

/** The editors shipped with the library. */
export const EDITORS: EditorRegistry = { liveedit: LIVEEDIT };

/**
 * What the tasks need from an editor: an {@linkcode EditorEntry} per editor name (`-en`) that
 * builds a trainer (`EditorTrainer` of `src/train/trainer.ts`, for `deno task train`) and opens
 * an {@linkcode EditingModel} (a backbone with the editor in front of it, for
 * `deno task test-edit` and `deno task infer`). LiveEdit implements these
 * (`src/editors/liveedit/entry.ts`); the tasks only see these interfaces, so another editor
 * plugs in by adding an entry to the registry (`registry.ts`).
 *
 * @module
 */
import type { Example } from "../data/sample.ts";
import type { PlacementOptions } from "../models/vllm/place.ts";
import type { Schedule } from "../train/schedule.ts";
import type { EditorTrainer } from "../train/trainer.ts";

/** Teacher-forced predictions of one example: the argmax ids at the target positions. */
export interface Prediction {
  /** Argmax token ids at the positions that predict the target tokens. */
  readonly predicted: readonly number[];
  /** The target token ids (same length). */
  readonly target: readonly number[];
}

/** A backbone with an editor in front of it, as the evaluation uses it. */
export interface EditingModel {
  /** Editor name (`-en`), e.g. `"liveedit"`. */
  readonly editorName: string;
  /** Backbone name, e.g. `"blip2-opt-2.7b"`. */
  readonly modelName: string;
  /** Applies one edit (image, prompt, target); resolves when it is in effect. */
  edit(request: Example): Promise<void>;
  /** Removes every edit: the model answers as the unedited backbone again. */
  restore(): Promise<void>;
  /** Teacher-forced predictions for a batch of examples (one forward pass each batch). */
  predict(examples: readonly Example[]): Promise<Prediction[]>;
  /** Greedy decoding of up to `maxNewTokens` ids from the prompt (no teacher forcing). */
  generate(example: Example, maxNewTokens: number): Promise<number[]>;
  /**
   * Compiles and loads the sessions that editing and teacher-forced prediction run, so that
   * the evaluation's first edit and first chunk do not pay for it (optional: part of start-up).
   */
  warmUp?(): Promise<void>;
  /**
   * Loads what `examples` will need (their images) ahead of the calls that use them, so that
   * the timed edits do not decode images (optional; each image is still decoded once).
   */
  preload?(examples: readonly Example[]): Promise<void>;
  /**
   * The editor's resolved settings (JSON) the model runs with, recorded in the evaluation's
   * `config.json`; absent for an editor without settings.
   */
  readonly editorConfig?: unknown;
  /** Writes the current edited state (editor weights + experts + requests) to one file. */
  saveState(path: string): Promise<void>;
  /** Frees sessions and devices. */
  close(): Promise<void>;
  /** Lines the task prints once the model is open (e.g. its placement on the devices). */
  readonly notes?: readonly string[];
}

/**
 * How the backbone is placed on its devices (`--split-layers`, `--max-memory`,
 * `--editor-device`; see `PlacementOptions` of `src/models/vllm/place.ts`).
 */
export interface PlacementSetup extends PlacementOptions {
  /** Experts the editor will hold at most (test-edit's `-sen`), for the memory estimate. */
  readonly experts?: number;
}

/** What a trainer is built from. */
export interface TrainerSetup {
  /** The backbone's model directory. */
  readonly modelDir: string;
  /** The backbone's name (`blip2-opt-2.7b`, or the directory's name). */
  readonly modelName: string;
  /**
   * The training devices (`-dvc`), in stage order: one, or several that the backbone is split
   * over.
   */
  readonly devices: readonly string[];
  /**
   * Devices of the frozen backbone's data-processing copy (`prepare`, `-edvc`), placed over
   * them as `devices` are; empty: the training devices.
   */
  readonly extraDevices: readonly string[];
  /** How the backbone is placed on `devices` (and `extraDevices`). */
  readonly placement?: PlacementSetup;
  /**
   * Data-parallel replicas (`--replicas R`, default 1): `devices` cut into R equal groups, one
   * copy of the backbone placed over each; every batch is split between the copies, their
   * gradients averaged on the host in a fixed order, one optimiser step.
   */
  readonly replicas?: number;
  /** The run's seed (`-rs`): initial weights and the trainer's own randomness. */
  readonly seed: number;
  /** Samples per batch (`-bs`). */
  readonly batchSize: number;
  /**
   * The editor's config (`--editor-config`: a name or a path); default: the one stored in
   * `checkpoint`, else the editor's choice. Given with a checkpoint, it must fit its weights.
   */
  readonly editorConfig?: string;
  /** The checkpoint's JSON that `-lkpt` resumes from, whose stored config is the default. */
  readonly checkpoint?: string | null;
  /**
   * `--edit-layer-twice`: train as the authors' released code does (LiveEdit: the edit layer
   * applied again to its own output); kept when resuming a run trained so. Editors without such
   * a variant may ignore it.
   */
  readonly editLayerTwice?: boolean;
}

/** A trainer with what the loop needs to run it. */
export interface TrainerSession {
  /** The trainer, with freshly initialised (seeded) weights. */
  readonly trainer: EditorTrainer;
  /** The learning rate by zero-based step. */
  readonly schedule: Schedule;
  /**
   * The editor's resolved settings (JSON), recorded in the run's `config.json` and in every
   * checkpoint, where `openModel` and a resumed `createTrainer` read them back.
   */
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
  /** The devices (`-dvc`), in stage order: one, or several that the backbone is split over. */
  readonly devices: readonly string[];
  /** How the backbone is placed on `devices`. */
  readonly placement?: PlacementSetup;
  /** A training checkpoint's JSON (`-ckpt`), or null for an editor that needs no training. */
  readonly checkpoint: string | null;
  /** The model id the checkpoint must carry (`<editor>/<model>`). */
  readonly checkpointModel: string;
  /** Edits to start from: an expert repository directory or a saved state file. */
  readonly edits?: string | null;
  /**
   * A directory where the model keeps its edits durably (`test-edit --edits-dir`): an edit is
   * acknowledged only once it is stored there, so a crash loses none. Created when missing.
   */
  readonly editsDir?: string;
  /**
   * The editor's config (`--editor-config`: a name or a path); default: the one stored in
   * `checkpoint`, else the editor's choice. Given with a checkpoint, it must fit its weights.
   */
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

/**
 * Flags that several tasks share, written once with every alias (and grouped as the code that
 * reads them takes them: {@linkcode TARGET_FLAGS}, {@linkcode DATASET_FLAGS}), and the
 * data-name check of `train` (`-dna`) and `test-edit` (`-dn`).
 *
 * @module
 */
import { type DataName, dataNameOf } from "../data/datasets.ts";
import { DEFAULT_IMAGE_LIMITS } from "../io/image_file.ts";
import { UsageError } from "./flags.ts";

/** `-en`: the editor by name (train, test-edit; infer gives it a default). */
export const EDITOR_NAME_FLAG = {
  editorName: {
    names: ["-en", "--editor-name"],
    type: "string",
    required: true,
    help: "editor, e.g. liveedit",
  },
} as const;

/** `--device`: the one device a check runs on (doctor, fixtures). */
export const DEVICE_FLAG = {
  device: {
    names: ["-dvc", "--device"],
    type: "string",
    default: "cpu",
    metavar: "DEVICE",
    help: "device: cpu, cpu:N, cuda:N, webgpu",
  },
} as const;

/**
 * `-dvc`: the devices the backbone (and the editor) is placed on (train, test-edit, infer): one,
 * or a list over which the model is split into stages.
 */
export const DEVICES_FLAG = {
  device: {
    names: ["-dvc", "--device"],
    type: "list",
    default: ["cpu"],
    metavar: "DEVICE[,DEVICE...]",
    help: "devices: cpu, cpu:N, cuda:N (or N), webgpu; several split the model into stages",
  },
} as const;

/**
 * `--replicas`: copies of the model, each placed over its own equal group of `-dvc`'s devices
 * (train: each copy takes a slice of every batch; test-edit: each evaluates a share of the
 * chunks).
 */
export const REPLICAS_FLAG = {
  replicas: {
    names: ["--replicas"],
    type: "int",
    default: 1,
    min: 1,
    metavar: "R",
    help: "copies of the model, each on an equal group of -dvc's devices (train: a slice of " +
      "every batch each; test-edit: a share of the chunks each)",
  },
} as const;

/** How the model is split over `-dvc`'s devices (train, test-edit, infer). */
export const PLACEMENT_FLAGS = {
  splitLayers: {
    names: ["--split-layers"],
    type: "list",
    metavar: "L[,L...]",
    help: "first decoder layer of every stage but the first, e.g. 20 for two devices (default: " +
      "balanced by parameter bytes and an activation reserve)",
  },
  maxMemory: {
    names: ["--max-memory"],
    type: "list",
    metavar: "SIZE[,SIZE...]",
    help: "memory each device may use, e.g. 32GiB: one for all, or one per device (-dvc, then " +
      "-edvc); a model that does not fit fails before loading",
  },
  editorDevice: {
    names: ["--editor-device"],
    type: "string",
    metavar: "DEVICE",
    help: "device of the editor and its experts (default: the device holding the edit layer)",
  },
} as const;

/** `-ckpt`: the trained editor (test-edit, infer). */
export const CKPT_FLAG = {
  ckpt: {
    names: ["-ckpt", "--editor-ckpt-path"],
    type: "string",
    noneable: true,
    metavar: "PATH",
    help: "trained editor: a checkpoint (.json), a checkpoints/ directory or a run directory",
  },
} as const;

/** Where the backbone and the editor config come from (every task). */
export const BACKBONE_FLAGS = {
  editorConfig: {
    names: ["--editor-config"],
    type: "string",
    metavar: "NAME|FILE",
    help:
      "editor config: blip2, llava, minigpt4, tiny (make-tiny models) or a JSON file (default: by backbone)",
  },
  modelDir: {
    names: ["--model-dir"],
    type: "string",
    metavar: "DIR",
    help: "the backbone's model directory (overrides liveedit.config.json)",
  },
  config: {
    names: ["--config"],
    type: "string",
    metavar: "FILE",
    help: "settings file (default liveedit.config.json in the working directory)",
  },
} as const;

/** Where the data sets are, and what to do with missing images (train, test-edit). */
export const DATA_FLAGS = {
  dataRoot: {
    names: ["--data-root"],
    type: "string",
    metavar: "DIR",
    help: "directory holding easy-edit-mm/ and VLKEB/ (default: config dataRoot, else data)",
  },
  skipMissingImages: {
    names: ["--skip-missing-images"],
    type: "boolean",
    help: "skip records whose images are missing instead of failing",
  },
} as const;

/** `-mn`: a backbone name from the settings file or a model directory (every task). */
export const MODEL_NAME_FLAG = {
  modelName: {
    names: ["-mn", "--model-name", "--edit-model-name"],
    type: "string",
    required: true,
    help:
      "backbone: blip2, llava, minigpt4 (directories from liveedit.config.json), or a model directory",
  },
} as const;

/**
 * The data set named by `value` (`-dna` of train, `-dn` of test-edit), in any case; throws a
 * {@linkcode UsageError} listing the valid names for another.
 */
export function parseDataName(value: string): DataName {
  try {
    return dataNameOf(value);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** `--max-image-pixels`, `--allow-svg` (every task that reads images). */
export const IMAGE_FLAGS = {
  maxImagePixels: {
    names: ["--max-image-pixels"],
    type: "int",
    default: DEFAULT_IMAGE_LIMITS.maxPixels,
    min: 1,
    metavar: "N",
    help: "largest image accepted, in pixels (width x height, read from its header)",
  },
  allowSvg: {
    names: ["--allow-svg"],
    type: "boolean",
    help: "decode SVG images too (only PNG, JPEG and WebP otherwise; types from the content)",
  },
} as const;

/** `--truncate-prompt` (every task that runs the backbone). */
export const TRUNCATE_FLAG = {
  truncatePrompt: {
    names: ["--truncate-prompt"],
    type: "boolean",
    help: "cut prompts that do not fit the backbone's context from the left, instead of failing",
  },
} as const;

/** `--skip-bad-records` (train, test-edit). */
export const SKIP_BAD_FLAG = {
  skipBadRecords: {
    names: ["--skip-bad-records"],
    type: "boolean",
    help:
      "leave out records that fail a check (a bad or empty field, a bad image, too long for the " +
      "context) instead of failing, saying how many and which",
  },
} as const;

/**
 * What every task works on, as `resolveTarget` (`task.ts`) reads it: `-en`, `-mn`, `-dvc`,
 * `--editor-config`, `--model-dir`, `--config`, and the image limits.
 */
export const TARGET_FLAGS = {
  ...EDITOR_NAME_FLAG,
  ...MODEL_NAME_FLAG,
  ...DEVICES_FLAG,
  ...PLACEMENT_FLAGS,
  ...BACKBONE_FLAGS,
  ...IMAGE_FLAGS,
} as const;

/** The data set flags `loadTaskData` (`input_checks.ts`) reads, with `--data-root`. */
export const DATASET_FLAGS = { ...DATA_FLAGS, ...SKIP_BAD_FLAG, ...TRUNCATE_FLAG } as const;

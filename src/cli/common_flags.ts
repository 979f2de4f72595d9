/**
 * Flags that several tasks share, written once.
 *
 * @module
 */

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

/** `-h`/`--help`. */
export const HELP_FLAG = {
  help: { names: ["-h", "--help"], type: "boolean", help: "print this help" },
} as const;

/** `-mn`: a backbone name from the settings file or a model directory (train, test-edit). */
export const MODEL_NAME_FLAG = {
  modelName: {
    names: ["-mn", "--model-name", "--edit-model-name"],
    type: "string",
    required: true,
    help:
      "backbone: blip2, llava, minigpt4 (directories from liveedit.config.json), or a model directory",
  },
} as const;

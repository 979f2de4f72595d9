/**
 * Where the tasks find models and data: a small JSON file, `liveedit.config.json` in the
 * working directory (or `--config PATH`), instead of the original's `utils/GLOBAL.py`:
 *
 * ```json
 * { "models": { "blip2": "/models/blip2-opt-2.7b", "llava": "/models/llava-v1.5-7b" },
 *   "dataRoot": "data" }
 * ```
 *
 * `-mn` is a backbone name (`blip2`, `llava`, `minigpt4`; resolved through `models`, or
 * `--model-dir`), a key of `models` (any name the file gives a directory), or a model
 * directory itself. Relative paths in the file are relative to the file.
 *
 * @module
 */
import { existsSync, statSync } from "node:fs";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import { BACKBONES } from "../models/backbones.ts";

/** The default config file name, looked up in the working directory. */
export const CONFIG_FILE = "liveedit.config.json";

/** The full model name of each backbone's short name (`blip2` → `blip2-opt-2.7b`). */
const FULL_NAMES: Readonly<Record<string, string>> = Object.fromEntries(
  BACKBONES.map((b) => [b.name, b.displayNames[0]]),
);

/** The parsed config file. */
export interface LiveEditSettings {
  /** The file it was read from, or null when there is none. */
  readonly file: string | null;
  /** Model directories by name (absolute). */
  readonly models: Readonly<Record<string, string>>;
  /** The data root (absolute), or null when the file sets none. */
  readonly dataRoot: string | null;
}

/**
 * Reads the config file `path`, or `liveedit.config.json` in `cwd` when `path` is undefined
 * (a missing default file is an empty config; a missing explicit one is an error). Throws
 * naming the file and the field for malformed contents.
 */
export async function loadSettings(
  path: string | undefined,
  cwd = Deno.cwd(),
): Promise<LiveEditSettings> {
  const file = resolve(cwd, path ?? CONFIG_FILE);
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound && path === undefined) {
      return { file: null, models: {}, dataRoot: null };
    }
    throw new Error(`config file ${file}: cannot read it: ${(error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`config file ${file}: malformed JSON: ${(error as Error).message}`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new Error(`config file ${file}: must be a JSON object`);
  }
  const root = json as Record<string, unknown>;
  const base = dirname(file);
  const abs = (p: string) => isAbsolute(p) ? p : join(base, p);
  const models: Record<string, string> = {};
  const m = root.models ?? {};
  if (typeof m !== "object" || m === null || Array.isArray(m)) {
    throw new Error(`config file ${file}: field 'models' must be an object of name: directory`);
  }
  for (const [name, dir] of Object.entries(m)) {
    if (typeof dir !== "string" || dir === "") {
      throw new Error(`config file ${file}: field 'models.${name}' must be a directory path`);
    }
    models[name] = abs(dir);
  }
  const dr = root.dataRoot;
  if (dr !== undefined && (typeof dr !== "string" || dr === "")) {
    throw new Error(`config file ${file}: field 'dataRoot' must be a directory path`);
  }
  return { file, models, dataRoot: dr === undefined ? null : abs(dr as string) };
}

/** A resolved `-mn`. */
export interface ResolvedModel {
  /** The model's name in output paths (`blip2-opt-2.7b`, or the directory's name). */
  readonly name: string;
  /** The model directory (absolute). */
  readonly dir: string;
}

/**
 * Resolves `-mn` (`modelName`) and `--model-dir` (`modelDir`) against `settings`: an explicit
 * directory wins; then a name of `settings.models`; then an existing directory path. Throws
 * for an unknown name (listing the valid ones) and for a directory without `config.json`.
 */
export function resolveModel(
  modelName: string,
  modelDir: string | undefined,
  settings: LiveEditSettings,
  cwd = Deno.cwd(),
): ResolvedModel {
  const known = [...new Set([...Object.keys(FULL_NAMES), ...Object.keys(settings.models)])];
  let dir: string;
  let name: string;
  if (modelDir !== undefined) {
    dir = resolve(cwd, modelDir);
    name = FULL_NAMES[modelName] ?? basename(dir);
  } else if (settings.models[modelName] !== undefined) {
    dir = settings.models[modelName];
    name = FULL_NAMES[modelName] ?? modelName;
  } else if (FULL_NAMES[modelName] !== undefined) {
    const where = settings.file ?? join(cwd, CONFIG_FILE);
    throw new Error(
      `no model directory for ${modelName}: set models.${modelName} in ${where} or pass --model-dir`,
    );
  } else if (isDirectory(resolve(cwd, modelName))) {
    dir = resolve(cwd, modelName);
    name = basename(dir);
  } else {
    throw new Error(
      `unknown model name ${JSON.stringify(modelName)} (valid: ${
        known.join(", ")
      }, or a model directory)`,
    );
  }
  if (!isDirectory(dir)) {
    throw new Error(`model directory ${dir} (-mn ${modelName}) does not exist`);
  }
  if (!existsSync(join(dir, "config.json"))) {
    throw new Error(`model directory ${dir} (-mn ${modelName}) has no config.json`);
  }
  return { name, dir };
}

/** The data root: `--data-root`, else the config file's `dataRoot`, else `data`. */
export function resolveDataRoot(
  flag: string | undefined,
  settings: LiveEditSettings,
  cwd = Deno.cwd(),
): string {
  return flag !== undefined ? resolve(cwd, flag) : settings.dataRoot ?? resolve(cwd, "data");
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * A throw-away working directory for the task tests: a tiny model (`writeTinyModel`), a small
 * generated E-VQA data set in the original JSON + image layout (images written by sharp),
 * and a `liveedit.config.json` naming the model `tiny`.
 *
 * @module
 */
import { join } from "node:path";
import { writeTinyModel } from "../../src/models/tiny/write.ts";
import type { TinyArch } from "../../src/models/tiny/configs.ts";
import type { HfLayout } from "../../src/models/tiny/layout.ts";
import { colourOf, rawRecord, writeSolidPng } from "../data/_helpers.ts";
import { configJson, loadConfig } from "../../src/editors/liveedit/mod.ts";
import { Adam } from "../../src/train/adam.ts";
import { saveCheckpoint } from "../../src/train/checkpoint.ts";
import { Rng } from "../../src/tensor/rng.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { editingParams } from "../editors/liveedit/_tiny_backbone.ts";

/** The files of a workspace. */
export interface Workspace {
  /** The directory (the tasks' working directory). */
  readonly dir: string;
  /** The tiny model's directory. */
  readonly modelDir: string;
  /** The data root. */
  readonly dataRoot: string;
}

/** Options of {@linkcode makeWorkspace}. */
export interface WorkspaceOptions {
  /** Records in the train and eval files (default 12). */
  readonly records?: number;
  /** The tiny model's architecture (default `blip2-opt`). */
  readonly arch?: TinyArch;
  /** The tiny model's file layout (default `v4`). */
  readonly layout?: HfLayout;
}

/** Writes the workspace into the existing directory `dir`. */
export async function makeWorkspace(
  dir: string,
  options: WorkspaceOptions = {},
): Promise<Workspace> {
  const n = options.records ?? 12;
  const modelDir = join(dir, "models", "tiny-model");
  await writeTinyModel(modelDir, {
    arch: options.arch ?? "blip2-opt",
    seed: 3,
    layout: options.layout,
  });
  const dataRoot = join(dir, "data");
  const records = Array.from({ length: n }, (_, i) => rawRecord(i));
  const vqa = join(dataRoot, "easy-edit-mm", "vqa");
  await Deno.mkdir(vqa, { recursive: true });
  await Deno.writeTextFile(join(vqa, "vqa_train.json"), JSON.stringify(records, null, 1));
  await Deno.writeTextFile(join(vqa, "vqa_eval.json"), JSON.stringify(records, null, 1));
  const images = join(dataRoot, "easy-edit-mm", "images");
  await writeSolidPng(join(images, "val2014/loc.png"), colourOf(0, 2));
  for (let i = 0; i < n; i++) {
    await writeSolidPng(join(images, `val2014/img${i}.png`), colourOf(i, 0));
    await writeSolidPng(join(images, `val2014_image_rephrase/reph${i}.png`), colourOf(i, 1));
  }
  await Deno.writeTextFile(
    join(dir, "liveedit.config.json"),
    JSON.stringify({ models: { tiny: "models/tiny-model" }, dataRoot: "data" }),
  );
  return { dir, modelDir, dataRoot };
}

/** Runs `fn` in a fresh temporary directory, with a temporary graph cache; both removed afterwards. */
export async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "liveedit-tasks-" });
  // the tasks compile graphs into the default cache: keep it in a temporary folder too
  const cache = await Deno.makeTempDir({ prefix: "liveedit-graphs-" });
  const previous = Deno.env.get("LIVEEDIT_CACHE");
  Deno.env.set("LIVEEDIT_CACHE", cache);
  try {
    await fn(dir);
  } finally {
    if (previous === undefined) Deno.env.delete("LIVEEDIT_CACHE");
    else Deno.env.set("LIVEEDIT_CACHE", previous);
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(cache, { recursive: true });
  }
}

/** Every file under `dir`, relative, sorted (empty when `dir` does not exist). */
export async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (sub: string) => {
    for await (const e of Deno.readDir(join(dir, sub))) {
      const rel = sub ? `${sub}/${e.name}` : e.name;
      if (e.isDirectory) await walk(rel);
      else out.push(rel);
    }
  };
  try {
    await walk("");
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return out.sort();
}

/** `value` without the object fields named in `keys`, at every depth. */
export function withoutKeys(value: unknown, keys: ReadonlySet<string>): unknown {
  if (Array.isArray(value)) return value.map((v) => withoutKeys(v, keys));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).filter(([k]) => !keys.has(k)).map((
        [k, v],
      ) => [k, withoutKeys(v, keys)]),
    );
  }
  return value;
}

/** The result files' wall-clock field, which differs from run to run. */
const EDIT_TIME = new Set(["edit_time"]);

/** The JSON result file at `path` without its wall-clock fields (`edit_time`). */
export async function timeless(path: string): Promise<unknown> {
  return withoutKeys(JSON.parse(await Deno.readTextFile(path)), EDIT_TIME);
}

/** A collecting task context: messages go into `lines`. */
export function collect(): {
  lines: string[];
  errors: string[];
  print: (l: string) => void;
  printError: (l: string) => void;
} {
  const lines: string[] = [], errors: string[] = [];
  return { lines, errors, print: (l) => lines.push(l), printError: (l) => errors.push(l) };
}

/**
 * Saves `weights` as the one checkpoint (`epoch-1-i-1-ema_loss-1.0000`: step 1, a fresh Adam
 * state) of the run `<dir>/ckpt` for model id `model`, storing `editorConfig` when given;
 * returns `<dir>/ckpt`.
 */
export async function writeCheckpoint(
  dir: string,
  model: string,
  weights: Record<string, Tensor<"f32">>,
  editorConfig?: Record<string, unknown>,
): Promise<string> {
  await saveCheckpoint(join(dir, "ckpt", "checkpoints"), "epoch-1-i-1-ema_loss-1.0000", {
    model,
    ...(editorConfig ? { editorConfig } : {}),
    weights,
    adam: new Adam(weights).state(),
    step: 1,
    epoch: 1,
    emaLoss: 1,
    rng: new Rng(0).state(),
  });
  return join(dir, "ckpt");
}

/** A checkpoint of model `model` (default `fake/tiny`) with one zero weight `w` `[6]`, for the fake editor. */
export function fakeCheckpoint(dir: string, model = "fake/tiny"): Promise<string> {
  return writeCheckpoint(dir, model, { w: new Tensor("f32", [6], new Float32Array(6)) });
}

/**
 * A LiveEdit checkpoint of editor config `config` (a shipped name or a path; default `tiny`)
 * in `<dir>/ckpt` for model id `model` (e.g. `liveedit/tiny`), storing that config, with untrained
 * weights whose edits change the answers (`editingParams`); returns `<dir>/ckpt`.
 */
export async function writeEditingCheckpoint(
  dir: string,
  model: string,
  config = "tiny",
): Promise<string> {
  const editor = await loadConfig(config);
  return writeCheckpoint(dir, model, editingParams(editor), configJson(editor));
}

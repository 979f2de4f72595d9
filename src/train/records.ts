/**
 * The records of a training run, in the original layout:
 *
 * ```
 * records/<editor>/<model>/<train_name>/
 *   config.json            every setting of the run, the seed, the data and the editor config
 *   checkpoints/           epoch-<E>-i-<I>-ema_loss-<L>.{json,safetensors} (checkpoint.ts)
 *   logs/train.jsonl       one line per logged step
 *   logs/losses.svg        the loss curves, refreshed as the run goes
 * ```
 *
 * `train_name` is `<prefix>-<YYYY.MM.DD-HH.MM.SS>` (the original's `-tnp` and timestamp), or
 * the timestamp alone without a prefix; `-2`, `-3`, ... is added when the name is taken. The
 * runs of one training name are those that share its prefix.
 *
 * A killed run can leave temporary files and a checkpoint's `.safetensors` without its `.json`;
 * the run that resumes from it removes them ({@linkcode removeRunLeftovers}), once the killed
 * run's process (`owner` in its `config.json`) is gone.
 *
 * @module
 */
import { existsSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { type CheckpointInfo, latestCheckpoint } from "./checkpoint.ts";
import { isTempFileName, removeLeftovers, tagGone } from "../io/leftovers.ts";

/** The checkpoint directory of a run. */
export const CHECKPOINTS_DIR = "checkpoints";
/** The log directory of a run. */
export const LOGS_DIR = "logs";
/** The JSONL log of a run, under {@linkcode LOGS_DIR}. */
export const LOG_FILE = "train.jsonl";
/** The loss plot of a run, under {@linkcode LOGS_DIR}. */
export const PLOT_FILE = "losses.svg";
/** The settings of a run. */
export const RUN_CONFIG_FILE = "config.json";

/** `YYYY.MM.DD-HH.MM.SS` in local time, as the original's `datetime.now().strftime`. */
export function timestamp(date = new Date()): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${date.getFullYear()}.${p(date.getMonth() + 1)}.${p(date.getDate())}-` +
    `${p(date.getHours())}.${p(date.getMinutes())}.${p(date.getSeconds())}`;
}

/** `<prefix>-<timestamp>`, or the timestamp alone when `prefix` is empty or undefined. */
export function trainName(prefix: string | undefined, date = new Date()): string {
  if (prefix !== undefined && /[/\\]/.test(prefix)) {
    throw new Error(
      `train name prefix ${JSON.stringify(prefix)} must not contain a path separator`,
    );
  }
  return prefix ? `${prefix}-${timestamp(date)}` : timestamp(date);
}

/**
 * The checkpoint's name for the completed step `step` (1-based, as the original's `train_i`)
 * in epoch `epoch` (1-based): `epoch-<E>-i-<I>-ema_loss-<L>`.
 */
export function checkpointName(epoch: number, step: number, emaLoss: number): string {
  return `epoch-${epoch}-i-${step}-ema_loss-${emaLoss.toFixed(4)}`;
}

/** The checkpoint model id of `editor` on `model`, e.g. `liveedit/blip2-opt-2.7b`. */
export function checkpointModelId(editor: string, model: string): string {
  return `${editor}/${model}`;
}

/**
 * Creates `records/<editor>/<model>/<name>/` with `checkpoints/` and `logs/`, adding `-2`,
 * `-3`, ... to `name` when a run of that name exists. Returns the run directory.
 */
export async function createRunDir(
  records: string,
  editor: string,
  model: string,
  name: string,
): Promise<string> {
  const parent = join(records, editor, model);
  await Deno.mkdir(parent, { recursive: true });
  for (let k = 1;; k++) {
    const dir = join(parent, k === 1 ? name : `${name}-${k}`);
    try {
      await Deno.mkdir(dir);
    } catch (error) {
      if (error instanceof Deno.errors.AlreadyExists) continue;
      throw error;
    }
    await Deno.mkdir(join(dir, CHECKPOINTS_DIR));
    await Deno.mkdir(join(dir, LOGS_DIR));
    return dir;
  }
}

/** The training name prefix of run directory name `name`, or undefined when it is not one. */
export function trainNamePrefix(name: string): string | undefined {
  const m = /^(?:(.*)-)?\d{4}\.\d{2}\.\d{2}-\d{2}\.\d{2}\.\d{2}(?:-\d+)?$/.exec(name);
  return m === null ? undefined : m[1] ?? "";
}

/**
 * The newest complete checkpoint (by the time it was written; ties: the higher step) of the
 * runs in `parent` whose training name prefix is `prefix`, or undefined.
 */
export async function newestCheckpointOf(
  parent: string,
  prefix: string,
): Promise<CheckpointInfo | undefined> {
  let best: CheckpointInfo | undefined;
  if (!isDirectory(parent)) return undefined;
  for await (const e of Deno.readDir(parent)) {
    const dir = join(parent, e.name, CHECKPOINTS_DIR);
    if (!e.isDirectory || trainNamePrefix(e.name) !== prefix || !isDirectory(dir)) continue;
    const info = await latestCheckpoint(dir);
    if (
      info !== undefined &&
      (best === undefined || info.time > best.time ||
        (info.time === best.time && info.step > best.step))
    ) best = info;
  }
  return best;
}

/**
 * The JSON path of the checkpoint `path` names (`-lkpt`, `-ckpt`): a checkpoint's `.json` (or
 * its `.safetensors`, or the name without extension), a `checkpoints/` directory (its latest
 * complete checkpoint), or a run directory (the latest of its `checkpoints/`). A run without a
 * complete checkpoint, or a path that does not exist but names a training name prefix in its
 * directory (`records/liveedit/blip2/EVQA` for the runs `EVQA-<timestamp>`), gives the newest
 * complete checkpoint of that training name's runs, and `note` gets a line saying which. Throws
 * naming `path` when there is none. `loadCheckpoint` then verifies the files.
 */
export async function findCheckpoint(
  path: string,
  note: (line: string) => void = () => {},
): Promise<string> {
  const abs = resolve(path);
  const fallback = async (parent: string, prefix: string, why: string): Promise<string> => {
    const info = await newestCheckpointOf(parent, prefix);
    if (info === undefined) {
      throw new Error(
        `checkpoint ${path}: ${why}, and no run of training name ${
          JSON.stringify(prefix)
        } in ${parent} has one`,
      );
    }
    note(
      `checkpoint ${path}: ${why}; using the newest complete checkpoint of training name ` +
        `${JSON.stringify(prefix)}: ${info.jsonPath} (step ${info.step})`,
    );
    return info.jsonPath;
  };
  if (isDirectory(abs)) {
    const dir = isDirectory(join(abs, CHECKPOINTS_DIR)) ? join(abs, CHECKPOINTS_DIR) : abs;
    const info = await latestCheckpoint(dir);
    if (info !== undefined) return info.jsonPath;
    const run = dir === abs && basename(abs) === CHECKPOINTS_DIR ? dirname(abs) : abs;
    const prefix = trainNamePrefix(basename(run));
    const why = `no complete checkpoint in ${dir}`;
    if (prefix === undefined) throw new Error(`checkpoint ${path}: ${why}`);
    return await fallback(dirname(run), prefix, why);
  }
  const jsonPath = `${abs.replace(/\.(json|safetensors)$/, "")}.json`;
  if (existsSync(jsonPath)) return jsonPath;
  if (!existsSync(abs) && !/\.(json|safetensors)$/.test(abs)) {
    const parent = dirname(abs), prefix = basename(abs);
    if ((await newestCheckpointOf(parent, prefix)) !== undefined) {
      return await fallback(parent, prefix, "is not a run but a training name prefix");
    }
  }
  throw new Error(
    jsonPath === abs
      ? `checkpoint ${jsonPath} does not exist`
      : `checkpoint ${path}: ${jsonPath} does not exist`,
  );
}

/**
 * Removes what a killed run left in run directory `runDir`: temporary files of atomic writes
 * (in the run directory, `checkpoints/` and `logs/`) and checkpoint `.safetensors` files
 * without their `.json`. Nothing is touched while the run's process (`owner` in its
 * `config.json`) may be running. Returns the paths removed.
 */
export async function removeRunLeftovers(runDir: string): Promise<string[]> {
  let owner: unknown;
  try {
    owner = JSON.parse(await Deno.readTextFile(join(runDir, RUN_CONFIG_FILE))).owner;
  } catch {
    owner = undefined; // no readable config.json: a run of an older version, or not a run
  }
  if (typeof owner === "string" && !tagGone(owner)) return [];
  const temporaries = (e: Deno.DirEntry) => e.isFile && isTempFileName(e.name);
  const checkpoints = join(runDir, CHECKPOINTS_DIR);
  const removed = [
    ...await removeLeftovers(runDir, temporaries),
    ...await removeLeftovers(join(runDir, LOGS_DIR), temporaries),
    ...await removeLeftovers(checkpoints, temporaries),
  ];
  if (!isDirectory(checkpoints)) return removed;
  for await (const e of Deno.readDir(checkpoints)) {
    const stem = e.name.replace(/\.safetensors$/, "");
    if (!e.isFile || stem === e.name || existsSync(join(checkpoints, `${stem}.json`))) continue;
    await Deno.remove(join(checkpoints, e.name));
    removed.push(join(checkpoints, e.name));
  }
  return removed;
}

/** The run directory a checkpoint JSON belongs to, when it lies in a run's `checkpoints/`. */
export function runDirOf(checkpointJson: string): string | undefined {
  const dir = dirname(checkpointJson);
  return basename(dir) === CHECKPOINTS_DIR ? dirname(dir) : undefined;
}

function isDirectory(path: string): boolean {
  return existsSync(path) && statSync(path).isDirectory();
}

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
 * the timestamp alone without a prefix.
 *
 * @module
 */
import { existsSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { latestCheckpoint } from "../editors/liveedit/checkpoint.ts";

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

/**
 * The JSON path of the checkpoint `path` names (`-lkpt`, `-ckpt`): a checkpoint's `.json` (or
 * its `.safetensors`, or the name without extension), a `checkpoints/` directory (its latest
 * complete checkpoint), or a run directory (the latest of its `checkpoints/`). Throws naming
 * `path` when there is none. `loadCheckpoint` then verifies the files.
 */
export async function findCheckpoint(path: string): Promise<string> {
  const abs = resolve(path);
  const isDir = (p: string) => existsSync(p) && statSync(p).isDirectory();
  if (isDir(abs)) {
    const dir = isDir(join(abs, CHECKPOINTS_DIR)) ? join(abs, CHECKPOINTS_DIR) : abs;
    const info = await latestCheckpoint(dir);
    if (info === undefined) throw new Error(`checkpoint ${path}: no complete checkpoint in ${dir}`);
    return info.jsonPath;
  }
  const jsonPath = `${abs.replace(/\.(json|safetensors)$/, "")}.json`;
  if (!existsSync(jsonPath)) {
    throw new Error(
      jsonPath === abs
        ? `checkpoint ${jsonPath} does not exist`
        : `checkpoint ${path}: ${jsonPath} does not exist`,
    );
  }
  return jsonPath;
}

/** The run directory a checkpoint JSON belongs to, when it lies in a run's `checkpoints/`. */
export function runDirOf(checkpointJson: string): string | undefined {
  const dir = dirname(checkpointJson);
  return basename(dir) === CHECKPOINTS_DIR ? dirname(dir) : undefined;
}

/**
 * Training checkpoints of any editor: its weights, the Adam state, the step/epoch/EMA loss and
 * the RNG state, written so that a crash never leaves a checkpoint that loads half-written.
 *
 * A checkpoint `<name>` in `<dir>` is two files:
 * - `<name>.safetensors`: the editor weights under the editor's names (LiveEdit: the authors'
 *   `edit_extractor.…`, `inpt_extractor.…`, `moegen_c.…`, `moegen_r.…`, `instant_reps_norm.…`)
 *   and the Adam moments `exp_avg.<weight>` / `exp_avg_sq.<weight>`, all f32; `__metadata__`
 *   has `format` (`"liveedit-checkpoint"`) and `model`;
 * - `<name>.json`: `format`, `version` (1), `model`, `step`, `epoch`, `emaLoss`, `adamStep`,
 *   `rng` (an {@linkcode RngState}), `time`, and `tensors` (the safetensors file's name),
 *   `bytes` and `sha256` (its size and hash), and `editorConfig`: the editor's resolved
 *   settings the weights were trained with (any JSON; absent in checkpoints of older versions,
 *   see {@linkcode checkpointEditorConfig}).
 *
 * Writing order: an existing `<name>.json` is removed first, then the safetensors file is
 * written atomically (temporary file, fsync, rename), then the JSON atomically, last. The JSON
 * is the commit mark: a checkpoint counts only when its JSON is there and the safetensors
 * file has the recorded size ({@linkcode latestCheckpoint}) and hash ({@linkcode loadCheckpoint}).
 * A crash at any point leaves every other checkpoint as it was; overwriting a name loses that
 * name's old checkpoint if the crash comes mid-write, so name checkpoints by step.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { basename, dirname, join } from "node:path";
import { writeJsonAtomic } from "../io/atomic.ts";
import { checkNamedTensors, type ExpectedShapes } from "../io/named_tensors.ts";
import { SafetensorsFile, writeSafetensors } from "../io/safetensors.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { RngState } from "../tensor/rng.ts";
import type { AdamState } from "./adam.ts";

/** The `format` of checkpoint files. */
export const CHECKPOINT_FORMAT = "liveedit-checkpoint";

/** Everything needed to resume training. */
export interface TrainingCheckpoint {
  /** What the weights belong to, e.g. `"liveedit/llava-v1.5-7b"`; checked on load. */
  readonly model: string;
  /** Editor weights under the authors' names. */
  readonly weights: Readonly<Record<string, Tensor<"f32">>>;
  /** Adam state from `Adam.state()`: `exp_avg.<weight>` / `exp_avg_sq.<weight>` moments. */
  readonly adam: AdamState;
  /** Training step (samples or batches, as the trainer counts). */
  readonly step: number;
  /** Epoch. */
  readonly epoch: number;
  /** Exponential moving average of the loss, or null before the first step. */
  readonly emaLoss: number | null;
  /** State of the training Rng (`rng.state()`). */
  readonly rng: RngState;
  /**
   * The editor's resolved settings (JSON), so that the checkpoint opens without naming them
   * again; undefined when not stored (checkpoints of older versions).
   */
  readonly editorConfig?: unknown;
}

/** A complete checkpoint found on disk. */
export interface CheckpointInfo {
  /** `<name>` of `<name>.json`. */
  readonly name: string;
  /** Path of the JSON file. */
  readonly jsonPath: string;
  /** Path of the safetensors file. */
  readonly tensorsPath: string;
  /** The model it belongs to. */
  readonly model: string;
  /** Training step. */
  readonly step: number;
  /** Epoch. */
  readonly epoch: number;
  /** When it was written, ISO 8601. */
  readonly time: string;
}

/** A checkpoint read back by {@linkcode loadCheckpoint}, and where its tensors are. */
export interface LoadedCheckpoint extends TrainingCheckpoint {
  /**
   * The safetensors file the weights were read from (verified against the JSON's hash), for
   * sessions that read the weights there as external initializers.
   */
  readonly tensorsPath: string;
}

/** What {@linkcode loadCheckpoint} checks the checkpoint against. */
export interface CheckpointExpectations {
  /** The model the checkpoint must belong to. */
  readonly model: string;
  /** Exactly these weight names with these shapes (a record of tensors works). */
  readonly weights?: ExpectedShapes;
}

interface CheckpointJson {
  format: typeof CHECKPOINT_FORMAT;
  version: 1;
  model: string;
  step: number;
  epoch: number;
  emaLoss: number | null;
  adamStep: number;
  rng: RngState;
  time: string;
  tensors: string;
  bytes: number;
  sha256: string;
  editorConfig?: unknown;
}

const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
const ADAM_PREFIXES = ["exp_avg.", "exp_avg_sq."] as const;

/**
 * Writes checkpoint `name` into `dir` (created if missing) in the crash-safe order described
 * in the module doc, and returns where it is. Throws naming the tensor when a weight name
 * collides with the Adam names or an Adam moment has no weight of its size.
 *
 * @example
 * ```ts
 * import { latestCheckpoint, loadCheckpoint, saveCheckpoint } from "./checkpoint.ts";
 * import { Adam } from "./adam.ts";
 * import { Rng } from "../tensor/rng.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * const w = new Tensor("f32", [2], new Float32Array([1, 2]));
 * const adam = new Adam({ w });
 * adam.step({ w: new Float32Array([0.1, -0.1]) });
 * const dir = await Deno.makeTempDir();
 * await saveCheckpoint(dir, "step-1", {
 *   model: "liveedit/tiny", weights: { w }, adam: adam.state(), step: 1, epoch: 0,
 *   emaLoss: 0.5, rng: new Rng(7).state(),
 * });
 * const info = await latestCheckpoint(dir);
 * const ckpt = await loadCheckpoint(info!.jsonPath, { model: "liveedit/tiny", weights: { w } });
 * if (ckpt.adam.step !== 1) throw new Error("restored");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function saveCheckpoint(
  dir: string,
  name: string,
  checkpoint: TrainingCheckpoint,
): Promise<CheckpointInfo> {
  if (!NAME.test(name)) {
    throw new Error(`checkpoint name ${JSON.stringify(name)} must match ${NAME} (in ${dir})`);
  }
  const jsonPath = join(dir, `${name}.json`), tensorsPath = join(dir, `${name}.safetensors`);
  const tensors = checkTensors(tensorsPath, checkpoint);
  for (const [what, v] of [["step", checkpoint.step], ["epoch", checkpoint.epoch]] as const) {
    if (!Number.isSafeInteger(v) || v < 0) {
      throw new Error(`${jsonPath}: ${what} must be an integer >= 0, got ${v}`);
    }
  }
  await Deno.mkdir(dir, { recursive: true });
  await Deno.remove(jsonPath).catch((error) => {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  });
  await writeSafetensors(tensorsPath, tensors, {
    format: CHECKPOINT_FORMAT,
    model: checkpoint.model,
  });
  const { bytes, sha256 } = await hashFile(tensorsPath);
  const json: CheckpointJson = {
    format: CHECKPOINT_FORMAT,
    version: 1,
    model: checkpoint.model,
    step: checkpoint.step,
    epoch: checkpoint.epoch,
    emaLoss: checkpoint.emaLoss,
    adamStep: checkpoint.adam.step,
    rng: checkpoint.rng,
    time: new Date().toISOString(),
    tensors: basename(tensorsPath),
    bytes,
    sha256,
    ...(checkpoint.editorConfig === undefined ? {} : { editorConfig: checkpoint.editorConfig }),
  };
  await writeJsonAtomic(jsonPath, json);
  return infoOf(name, jsonPath, tensorsPath, json);
}

/**
 * The complete checkpoint of `dir` with the highest step (ties: the newest), or undefined when
 * there is none. Incomplete ones (no JSON, unreadable JSON, a safetensors file missing or of
 * another size than recorded) are skipped.
 */
export async function latestCheckpoint(dir: string): Promise<CheckpointInfo | undefined> {
  let best: CheckpointInfo | undefined;
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.isFile || !entry.name.endsWith(".json") || entry.name.startsWith(".")) continue;
    const name = entry.name.slice(0, -".json".length);
    const info = await readInfo(dir, name).catch(() => undefined);
    if (
      info !== undefined &&
      (best === undefined || info.step > best.step ||
        (info.step === best.step && info.time > best.time))
    ) best = info;
  }
  return best;
}

/**
 * Loads the checkpoint whose JSON is `jsonPath`, verifying the safetensors file's hash, that
 * both files name `expect.model`, the weight shapes (when `expect.weights` is given) and that
 * every weight has its two Adam moments of its shape. Throws naming the file (and tensor).
 */
export async function loadCheckpoint(
  jsonPath: string,
  expect: CheckpointExpectations,
): Promise<LoadedCheckpoint> {
  const dir = dirname(jsonPath);
  const name = basename(jsonPath).replace(/\.json$/, "");
  const json = await readJson(jsonPath);
  if (json.model !== expect.model) {
    throw new Error(
      `${jsonPath}: checkpoint is for model "${json.model}", expected "${expect.model}"`,
    );
  }
  const tensorsPath = join(dir, json.tensors);
  const { sha256 } = await hashFile(tensorsPath);
  if (sha256 !== json.sha256) {
    throw new Error(
      `${tensorsPath}: contents do not match ${jsonPath} (sha256 ${sha256}, recorded ${json.sha256}): incomplete or replaced checkpoint ${name}`,
    );
  }
  const file = await SafetensorsFile.open(tensorsPath);
  let all: Record<string, Tensor>;
  try {
    if (file.metadata.model !== expect.model) {
      throw new Error(
        `${tensorsPath}: tensors are for model "${file.metadata.model}", expected "${expect.model}"`,
      );
    }
    all = await file.readAll();
  } finally {
    file.close();
  }
  const weights: Record<string, Tensor> = {}, moments: Record<string, Tensor<"f32">> = {};
  for (const [key, t] of Object.entries(all)) {
    if (ADAM_PREFIXES.some((p) => key.startsWith(p))) moments[key] = t as Tensor<"f32">;
    else weights[key] = t;
  }
  const checked = checkNamedTensors(tensorsPath, weights, expect.weights);
  const adamExpected: Record<string, { shape: readonly number[] }> = {};
  for (const [key, t] of Object.entries(checked)) {
    for (const p of ADAM_PREFIXES) adamExpected[p + key] = t;
  }
  checkNamedTensors(tensorsPath, moments, adamExpected);
  return {
    model: json.model,
    weights: checked,
    adam: { step: json.adamStep, tensors: moments },
    step: json.step,
    epoch: json.epoch,
    emaLoss: json.emaLoss,
    rng: json.rng,
    editorConfig: json.editorConfig,
    tensorsPath,
  };
}

/**
 * The editor settings stored in the checkpoint whose JSON is `jsonPath` (see
 * {@linkcode TrainingCheckpoint.editorConfig}), or undefined for a checkpoint written before
 * they were stored. Reads only the JSON; throws naming the file when it is not a checkpoint.
 */
export async function checkpointEditorConfig(jsonPath: string): Promise<unknown> {
  return (await readJson(jsonPath)).editorConfig;
}

/** The tensors to write: weights plus Adam moments, checked against each other. */
function checkTensors(path: string, c: TrainingCheckpoint): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const [key, t] of Object.entries(c.weights)) {
    if (ADAM_PREFIXES.some((p) => key.startsWith(p))) {
      throw new Error(`${path}: weight "${key}" collides with the Adam state names`);
    }
    out[key] = t;
  }
  for (const [key, t] of Object.entries(c.adam.tensors)) {
    const prefix = ADAM_PREFIXES.find((p) => key.startsWith(p));
    const weight = prefix === undefined ? undefined : c.weights[key.slice(prefix.length)];
    if (weight === undefined || weight.size !== t.size) {
      throw new Error(
        `${path}: Adam tensor "${key}" does not belong to a weight of ${t.size} elements`,
      );
    }
    out[key] = t;
  }
  return out;
}

async function readInfo(dir: string, name: string): Promise<CheckpointInfo> {
  const jsonPath = join(dir, `${name}.json`);
  const json = await readJson(jsonPath);
  const tensorsPath = join(dir, json.tensors);
  const { size } = await Deno.stat(tensorsPath);
  if (size !== json.bytes) {
    throw new Error(`${tensorsPath}: ${size} bytes, ${jsonPath} recorded ${json.bytes}`);
  }
  return infoOf(name, jsonPath, tensorsPath, json);
}

function infoOf(
  name: string,
  jsonPath: string,
  tensorsPath: string,
  json: CheckpointJson,
): CheckpointInfo {
  const { model, step, epoch, time } = json;
  return { name, jsonPath, tensorsPath, model, step, epoch, time };
}

async function readJson(path: string): Promise<CheckpointJson> {
  let json: CheckpointJson;
  try {
    json = JSON.parse(await Deno.readTextFile(path));
  } catch (error) {
    throw new Error(`${path}: cannot read checkpoint: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (json?.format !== CHECKPOINT_FORMAT || json.version !== 1) {
    throw new Error(
      `${path}: not a LiveEdit checkpoint (format ${JSON.stringify(json?.format)}, version ${
        JSON.stringify(json?.version)
      })`,
    );
  }
  if (typeof json.tensors !== "string" || basename(json.tensors) !== json.tensors) {
    throw new Error(`${path}: "tensors" must be a file name next to it`);
  }
  return json;
}

/** Size and hex sha256 of a file, read in chunks. */
async function hashFile(path: string): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash("sha256");
  let bytes = 0;
  using file = await Deno.open(path, { read: true }).catch((error) => {
    throw new Error(`${path}: cannot open: ${error.message}`, { cause: error });
  });
  const buf = new Uint8Array(1 << 22);
  for (;;) {
    const n = await file.read(buf);
    if (n === null) break;
    hash.update(buf.subarray(0, n));
    bytes += n;
  }
  return { bytes, sha256: hash.digest("hex") };
}

/**
 * The training loop of `deno task train`, as the original `VLLMBaseEditorWithTraining.train`:
 * shuffled batches per epoch (`src/data/batches.ts`), prepared ahead by a bounded background
 * {@linkcode Producer} (`trainer.prepare`, the frozen backbone), one `trainer.step` per batch at
 * the schedule's learning rate, an EMA of the loss (`ema = α·loss + (1-α)·ema`, starting at 1
 * as the original), a log line every `logEvery` steps and a checkpoint every `saveEvery` steps
 * and at the end. The run directory can be created lazily, once the first step has succeeded.
 *
 * Steps are counted from 1 over the whole run (the original's `train_i`); epochs from 1. A
 * checkpoint at step `i` holds the state after `i` steps; resuming from it runs step `i + 1`
 * next, on the batch an uninterrupted run would have used there (the data order depends only
 * on the data-order generator's state, which the checkpoint holds, and the epoch), so the
 * losses after a resume are those of the uninterrupted run, provided the trainer's own
 * randomness is a function of its restored state.
 *
 * A loss that is NaN or infinite, or any other failure, stops the run with a
 * {@linkcode TrainingError} naming the step, the epoch and (for a loss) the part, after saving
 * a checkpoint of the last good state (when the trainer's state is still good: the trainer
 * threw, or preparing a batch failed).
 *
 * @module
 */
import { join } from "node:path";
import { type Batch, batches, batchesPerEpoch } from "../data/batches.ts";
import type { EditSample } from "../data/sample.ts";
import type { EditorTrainer, PreparedTrainBatch, StepLosses } from "./trainer.ts";
import type { Rng } from "../tensor/rng.ts";
import { saveCheckpoint } from "./checkpoint.ts";
import { TrainLog } from "./log.ts";
import { Producer } from "./producer.ts";
import { checkpointName, CHECKPOINTS_DIR, LOGS_DIR } from "./records.ts";
import type { Schedule } from "./schedule.ts";

/** Options of {@linkcode trainLoop}. */
export interface TrainLoopOptions {
  /** The trainer (already holding the resumed state, if any). */
  readonly trainer: EditorTrainer;
  /** Learning rate by zero-based step index. */
  readonly schedule: Schedule;
  /** The training samples. */
  readonly samples: readonly EditSample[];
  /** Samples per batch (`-bs`). */
  readonly batchSize: number;
  /** Total epochs of the run (`-eps`), counting the epochs done before a resume. */
  readonly epochs: number;
  /** Save a checkpoint every this many steps (`-sci`). */
  readonly saveEvery: number;
  /** Log every this many steps (`-lpi`). */
  readonly logEvery: number;
  /** EMA factor of the loss (`-ea`). */
  readonly emaAlpha: number;
  /** Batches prepared ahead (`-dbs`). */
  readonly bufferSize: number;
  /** Batches prepared at once (the number of extra devices; default 1). */
  readonly concurrency?: number;
  /**
   * The run directory (`records/<editor>/<model>/<train_name>`, with `checkpoints/` and
   * `logs/`), or a function that creates it and returns its path: called once, when the first
   * step has succeeded, so that a run failing before its first step leaves no directory.
   */
  readonly runDir: string | (() => Promise<string>);
  /** The checkpoints' model id (`<editor>/<model>`). */
  readonly checkpointModel: string;
  /** The editor's resolved settings (JSON), stored in every checkpoint. */
  readonly editorConfig?: unknown;
  /** The data-order generator (only read; its state goes into every checkpoint). */
  readonly rng: Rng;
  /** Where a resumed run starts: steps done and the EMA loss then. */
  readonly resume?: { readonly step: number; readonly emaLoss: number };
  /** Messages (checkpoints saved, warnings); default `console.log`. */
  readonly print?: (line: string) => void;
  /** Makes the progress display for `total` steps from `start` (default: none). */
  readonly progress?: (total: number, start: number) => ProgressDisplay;
  /** Seconds between refreshes of the loss plot (default 10). */
  readonly plotInterval?: number;
}

/** Where the loop reports its progress (the tasks pass the bar of `src/cli/progress.ts`). */
export interface ProgressDisplay {
  /** `done` steps so far, with a note (epoch and losses). */
  update(done: number, note?: string): void;
  /** The run ended (or failed). */
  done(): void;
}

/** What a finished run did. */
export interface TrainLoopResult {
  /** Steps done in total (including those before a resume). */
  readonly steps: number;
  /** The EMA loss at the end. */
  readonly emaLoss: number;
  /** The JSON path of the last checkpoint written. */
  readonly lastCheckpoint: string | null;
  /** The run directory. */
  readonly runDir: string;
}

/** A run stopped by a failure; the message names the step, epoch and checkpoint saved. */
export class TrainingError extends Error {
  /** The checkpoint of the last good state written on the way out, if any. */
  readonly checkpoint: string | null;

  /** An error with `message`, `checkpoint` and the underlying `cause`. */
  constructor(message: string, checkpoint: string | null, cause?: unknown) {
    super(message, { cause });
    this.name = "TrainingError";
    this.checkpoint = checkpoint;
  }
}

/**
 * The first loss part that is not finite, as `[part, value]`, or `["total", value]` when only
 * the total is not.
 */
export function nonFiniteLoss(losses: StepLosses): [string, number] | undefined {
  const part = Object.entries(losses.parts).find(([, v]) => !Number.isFinite(v));
  if (part !== undefined) return part;
  return Number.isFinite(losses.total) ? undefined : ["total", losses.total];
}

interface Prepared {
  readonly batch: Batch<EditSample>;
  readonly prepared: PreparedTrainBatch;
}

/** A failure at one step; `stateGood` says whether the trainer's state is the last good one. */
class StepFailure extends Error {
  constructor(message: string, readonly stateGood: boolean, cause?: unknown) {
    super(message, { cause });
  }
}

/** Runs the loop (see the module documentation). */
export async function trainLoop(options: TrainLoopOptions): Promise<TrainLoopResult> {
  const { trainer, schedule, samples, batchSize, epochs, rng } = options;
  const print = options.print ?? console.log;
  const perEpoch = batchesPerEpoch(samples.length, batchSize);
  const total = epochs * perEpoch;
  let done = options.resume?.step ?? 0;
  let ema = options.resume?.emaLoss ?? 1;
  if (done >= total) {
    throw new Error(
      `nothing to train: the run is at step ${done} and ${epochs} epochs of ${perEpoch} ` +
        `batches are ${total} steps (raise -eps)`,
    );
  }
  const epochOf = (step: number) => Math.floor((step - 1) / perEpoch) + 1;
  const firstEpoch = Math.floor(done / perEpoch);
  function* source(): Generator<Batch<EditSample>> {
    for (let e = firstEpoch; e < epochs; e++) {
      yield* batches(samples, batchSize, rng, {
        epoch: e,
        step: e === firstEpoch ? done % perEpoch : 0,
      });
    }
  }
  let runDir = typeof options.runDir === "string" ? options.runDir : undefined;
  let log: TrainLog | undefined;
  /** The open log of the run, creating the run directory on the first call. */
  const openRun = async (): Promise<{ runDir: string; log: TrainLog }> => {
    runDir ??= await (options.runDir as () => Promise<string>)();
    log ??= await TrainLog.open(join(runDir, LOGS_DIR), {
      plotInterval: options.plotInterval,
      title: `${options.checkpointModel} training losses`,
      warn: (message) => print(`warning: ${message}`),
    });
    return { runDir, log };
  };
  let savedStep = done;
  let lastCheckpoint: string | null = null;
  const save = async (): Promise<string> => {
    const state = trainer.state();
    const info = await saveCheckpoint(
      join((await openRun()).runDir, CHECKPOINTS_DIR),
      checkpointName(epochOf(done), done, ema),
      {
        model: options.checkpointModel,
        weights: state.weights,
        adam: state.adam,
        step: done,
        epoch: epochOf(done),
        emaLoss: ema,
        rng: rng.state(),
        editorConfig: options.editorConfig,
      },
    );
    savedStep = done;
    lastCheckpoint = info.jsonPath;
    return info.jsonPath;
  };

  const producer = new Producer(
    source(),
    async (batch): Promise<Prepared> => ({ batch, prepared: await trainer.prepare(batch.samples) }),
    { buffer: options.bufferSize, concurrency: options.concurrency ?? 1 },
  );
  const progress = options.progress?.(total, done) ?? { update() {}, done() {} };
  const t0 = performance.now();
  let windowStart = t0, windowSamples = 0;
  try {
    try {
      for (;;) {
        let item: IteratorResult<Prepared>;
        try {
          item = await producer.next();
        } catch (error) {
          throw new StepFailure(
            `step ${done + 1} (epoch ${epochOf(done + 1)}): preparing the batch failed: ${
              messageOf(error)
            }`,
            true,
            error,
          );
        }
        if (item.done) break;
        const { batch, prepared } = item.value;
        const step = done + 1, epoch = batch.epoch + 1;
        const lr = schedule(done);
        let losses: StepLosses;
        try {
          losses = await trainer.step(prepared, lr);
        } catch (error) {
          throw new StepFailure(`step ${step} (epoch ${epoch}): ${messageOf(error)}`, true, error);
        }
        const bad = nonFiniteLoss(losses);
        if (bad !== undefined) {
          throw new StepFailure(
            `step ${step} (epoch ${epoch}): loss part "${bad[0]}" is ${bad[1]}`,
            false,
          );
        }
        done = step;
        ema = options.emaAlpha * losses.total + (1 - options.emaAlpha) * ema;
        windowSamples += batch.samples.length;
        const { log } = await openRun();
        if (step % options.logEvery === 0 || step === total) {
          const now = performance.now();
          await log.append({
            step,
            epoch,
            time: new Date().toISOString(),
            elapsed_s: (now - t0) / 1000,
            lr,
            loss: losses.total,
            ema_loss: ema,
            parts: losses.parts,
            samples_per_s: windowSamples / Math.max((now - windowStart) / 1000, 1e-9),
            batch_size: batch.samples.length,
          });
          windowStart = now;
          windowSamples = 0;
        }
        progress.update(
          done,
          `epoch ${epoch} loss ${losses.total.toFixed(4)} ema ${ema.toFixed(4)}`,
        );
        if (step % options.saveEvery === 0) await save();
      }
      if (savedStep !== done) await save();
    } catch (error) {
      if (!(error instanceof StepFailure)) throw error;
      let note: string;
      if (!error.stateGood) {
        const last = lastCheckpoint ??
          (options.resume ? "the checkpoint this run resumed from" : null);
        note = last === null
          ? "no checkpoint was saved (the trainer may have applied the update)"
          : `the trainer may have applied the update, so no checkpoint was saved; the last ` +
            `checkpoint is ${last} (step ${savedStep})`;
      } else if (done > savedStep) {
        note = `saved a checkpoint of the last good state (step ${done}): ${await save()}`;
      } else if (lastCheckpoint !== null) {
        note = `the last good state (step ${done}) is checkpoint ${lastCheckpoint}`;
      } else {
        note = done === 0 ? "no step was done" : `the last good state is step ${done}`;
      }
      throw new TrainingError(
        `training stopped at ${error.message}; ${note}`,
        lastCheckpoint,
        error,
      );
    }
  } finally {
    await producer.close();
    await log?.close();
    progress.done();
  }
  if (lastCheckpoint !== null) print(`checkpoint: ${lastCheckpoint}`);
  return { steps: done, emaLoss: ema, lastCheckpoint, runDir: runDir ?? (await openRun()).runDir };
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

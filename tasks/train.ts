/**
 * `deno task train`: trains an editor on a frozen backbone, as the original
 * `train_vllm_editor.py` (same flags, short and long; `--help` lists them). Writes
 * `records/<editor>/<model>/<train_name>/` with `config.json`, `checkpoints/` and `logs/`
 * (see `src/train/records.ts`); the run directory is made once the first step has succeeded,
 * so a run that fails before leaves none. `-lkpt` resumes a run exactly from a checkpoint (a
 * file, a `checkpoints/` directory or a run directory: its latest checkpoint; a run without a
 * complete checkpoint or a training name prefix: the newest complete checkpoint of that
 * training name, which is printed) into a new run directory, after removing what a killed
 * resumed run left behind. Exit status 0 on success, 1 on failure (a NaN/Inf loss names the step and the
 * part, after a checkpoint of the last good state is saved), 2 for bad usage.
 *
 * @example
 * ```sh
 * deno task train -en liveedit -mn blip2 -dna EVQA -bs 8 -dvc cuda:0 -edvc 1 -tnp EVQA -eps 50 -sci 500
 * ```
 *
 * @module
 */
import { join, resolve } from "node:path";
import {
  DATASET_FLAGS,
  parseDataName,
  REPLICAS_FLAG,
  TARGET_FLAGS,
} from "../src/cli/common_flags.ts";
import { HELP_FLAG, UsageError } from "../src/cli/flags.ts";
import { loadTaskData } from "../src/cli/input_checks.ts";
import { Progress } from "../src/cli/progress.ts";
import { resolveTarget, runTask, type TaskContext } from "../src/cli/task.ts";
import { batchesPerEpoch } from "../src/data/batches.ts";
import { DATA_NAMES } from "../src/data/datasets.ts";
import { loadCheckpoint } from "../src/train/checkpoint.ts";
import { writeJsonAtomic } from "../src/io/atomic.ts";
import { readOptionalJsonObject } from "../src/io/json.ts";
import { ownerTag } from "../src/io/leftovers.ts";
import { Rng } from "../src/tensor/rng.ts";
import { trainLoop } from "../src/train/loop.ts";
import {
  checkpointModelId,
  createRunDir,
  findCheckpoint,
  removeRunLeftovers,
  RUN_CONFIG_FILE,
  runDirOf,
  trainName,
} from "../src/train/records.ts";

/** The flags of `deno task train`. */
const TRAIN_FLAGS = {
  ...TARGET_FLAGS,
  ...REPLICAS_FLAG,
  dataName: {
    names: ["-dna", "--data-name"],
    type: "string",
    required: true,
    help: `training data set: ${DATA_NAMES.join(", ")}`,
  },
  batchSize: {
    names: ["-bs", "--batch-size"],
    type: "int",
    required: true,
    min: 1,
    help: "requests per training step",
  },
  extraDevices: {
    names: ["-edvc", "--extra-devices"],
    type: "list",
    default: [],
    help:
      "devices of the frozen backbone's copy that prepares batches ahead of the trainer, placed " +
      "over them as -dvc (N means -dvc's kind:N)",
  },
  dataN: {
    names: ["-dn", "--data-n"],
    type: "int",
    min: 1,
    help: "use only the first N training records",
  },
  loadCkpt: {
    names: ["-lkpt", "--load-ckpt", "--load-ckpt-path"],
    type: "string",
    noneable: true,
    metavar: "PATH",
    help:
      "resume from a checkpoint (.json), a checkpoints/ directory, a run directory or a training name prefix",
  },
  epochs: {
    names: ["-eps", "--epochs"],
    type: "int",
    default: 1000,
    min: 1,
    help: "total epochs (a resumed run counts the epochs already done)",
  },
  trainNamePrefix: {
    names: ["-tnp", "--train-name-prefix"],
    type: "string",
    help: "prefix of the run's name (<prefix>-<timestamp>)",
  },
  saveCkptInterval: {
    names: ["-sci", "--save-ckpt-interval", "--save-ckpt-per-i"],
    type: "int",
    default: 1000,
    min: 1,
    help: "save a checkpoint every N steps (and at the end)",
  },
  logInterval: {
    names: ["-lpi", "--log-print-interval", "--log-per-i"],
    type: "int",
    default: 1,
    min: 1,
    help: "write a log line every N steps",
  },
  emaAlpha: {
    names: ["-ea", "--ema-alpha"],
    type: "float",
    default: 0.1,
    min: 0,
    help: "EMA factor of the logged loss: ema = a*loss + (1-a)*ema",
  },
  seed: {
    names: ["-rs", "--seed", "--random-seed"],
    type: "int",
    min: 0,
    help: "random seed (default: the resumed run's, else from the clock)",
  },
  dataBufferSize: {
    names: ["-dbs", "--data-buffer-size"],
    type: "int",
    default: 4,
    min: 1,
    help: "batches prepared ahead by the background producer",
  },
  editLayerTwice: {
    names: ["--edit-layer-twice"],
    type: "boolean",
    help: "train as the authors' released code does: layer l_e applied again to its own " +
      "output (default: one pass, as inference runs; kept when resuming a run trained so)",
  },
  ...DATASET_FLAGS,
  records: {
    names: ["--records"],
    type: "string",
    default: "records",
    metavar: "DIR",
    help: "where runs are written",
  },
  ...HELP_FLAG,
} as const;

const SPEC = {
  name: "train",
  usage: "deno task train -en EDITOR -mn MODEL -dna DATA -bs N [options]",
  description:
    "Trains an editor on a frozen backbone (the original train_vllm_editor.py). Writes\n" +
    "records/<editor>/<model>/<train_name>/: config.json, checkpoints/ every -sci steps, and\n" +
    "logs/ (train.jsonl, losses.svg).",
  flags: TRAIN_FLAGS,
};

/** The original's seed from the clock: `int(time.time()*10000) % 99999999`. */
function clockSeed(): number {
  return Math.floor(Date.now() * 10) % 99999999;
}

/**
 * The `config.json` of the run holding `checkpointJson`; null without one. Throws naming the
 * file when it is unreadable or malformed.
 */
async function readRunConfig(checkpointJson: string): Promise<Record<string, unknown> | null> {
  const dir = runDirOf(checkpointJson);
  if (dir === undefined) return null;
  return await readOptionalJsonObject(join(dir, RUN_CONFIG_FILE)) ?? null;
}

/** Runs `deno task train` with `argv`; resolves with the exit status. */
export function runTrain(argv: readonly string[], context: TaskContext = {}): Promise<number> {
  return runTask(SPEC, argv, context, async (flags, ctx) => {
    if (flags.emaAlpha > 1) {
      throw new UsageError(`-ea/--ema-alpha must be in [0, 1], got ${flags.emaAlpha}`);
    }
    const dataName = parseDataName(flags.dataName);
    const { devices, extraDevices, replicas, placement, editorName, entry, model, dataRoot } =
      await resolveTarget(ctx, flags);
    if (entry.createTrainer === undefined) {
      throw new Error(`editor ${editorName} has no training (use deno task test-edit directly)`);
    }
    const data = await loadTaskData(dataName, "train", {
      dataRoot,
      model,
      limit: flags.dataN,
      print: ctx.print,
    }, flags);
    const checkpointJson = flags.loadCkpt === undefined
      ? null
      : await findCheckpoint(resolve(ctx.cwd, flags.loadCkpt), (l) => ctx.print(`note: ${l}`));
    const resumedRun = checkpointJson === null ? undefined : runDirOf(checkpointJson);
    if (resumedRun !== undefined) {
      for (const path of await removeRunLeftovers(resumedRun)) {
        ctx.print(`note: removed ${path}, left by a killed run`);
      }
    }
    const previous = checkpointJson === null ? null : await readRunConfig(checkpointJson);
    const previousSeed = typeof previous?.seed === "number" ? previous.seed : undefined;
    if (flags.seed !== undefined && previousSeed !== undefined && flags.seed !== previousSeed) {
      ctx.print(
        `warning: -rs ${flags.seed} differs from the resumed run's seed ${previousSeed}: ` +
          "the losses will not repeat those of an uninterrupted run",
      );
    }
    const seed = flags.seed ?? previousSeed ?? clockSeed();
    const modelId = checkpointModelId(editorName, model.name);
    const perEpoch = batchesPerEpoch(data.samples.length, flags.batchSize);

    const session = await entry.createTrainer({
      modelDir: model.dir,
      modelName: model.name,
      devices,
      extraDevices,
      placement,
      replicas: replicas.length,
      seed,
      batchSize: flags.batchSize,
      editorConfig: flags.editorConfig,
      checkpoint: checkpointJson,
      editLayerTwice: flags.editLayerTwice ?? false,
    });
    for (const note of session.notes ?? []) ctx.print(`note: ${note}`);
    const { trainer } = session;
    try {
      let rng = new Rng(seed);
      let resume: { step: number; emaLoss: number } | undefined;
      if (checkpointJson !== null) {
        const ckpt = await loadCheckpoint(checkpointJson, {
          model: modelId,
          weights: trainer.parameters(),
        });
        const expectEpoch = Math.floor((ckpt.step - 1) / perEpoch) + 1;
        if (ckpt.step > 0 && ckpt.epoch !== expectEpoch) {
          throw new Error(
            `${checkpointJson}: step ${ckpt.step} is in epoch ${ckpt.epoch}, but with ` +
              `${data.samples.length} samples and batch size ${flags.batchSize} (${perEpoch} ` +
              `batches per epoch) it would be in epoch ${expectEpoch}: resume with the run's ` +
              "-bs and -dn",
          );
        }
        trainer.load({ weights: ckpt.weights, adam: ckpt.adam });
        rng = Rng.fromState(ckpt.rng);
        resume = { step: ckpt.step, emaLoss: ckpt.emaLoss ?? 1 };
      }
      const total = flags.epochs * perEpoch;
      if ((resume?.step ?? 0) >= total) {
        throw new UsageError(
          `nothing to train: the checkpoint is at step ${resume?.step}, and -eps ` +
            `${flags.epochs} is ${total} steps`,
        );
      }
      const records = resolve(ctx.cwd, flags.records);
      const name = trainName(flags.trainNamePrefix);
      if (resume) ctx.print(`resuming from step ${resume.step}: ${checkpointJson}`);
      /** Creates the run directory once the first step has succeeded (see trainLoop). */
      const createRun = async (): Promise<string> => {
        const runDir = await createRunDir(records, editorName, model.name, name);
        await writeJsonAtomic(join(runDir, RUN_CONFIG_FILE), {
          editor_name: editorName,
          model_name: model.name,
          model_dir: model.dir,
          data_name: dataName,
          data_file: data.file,
          image_root: data.imageRoot,
          data_n: flags.dataN ?? null,
          samples: data.samples.length,
          skipped_records: data.skipped,
          skipped_record_indices: data.skippedRecords.map((r) => r.index),
          batch_size: flags.batchSize,
          batches_per_epoch: perEpoch,
          epochs: flags.epochs,
          total_steps: total,
          device: devices.join(","),
          extra_devices: extraDevices,
          replicas: replicas.map((group) => group.join(",")),
          placement: {
            split_layers: placement.splitLayers ?? null,
            max_memory: placement.maxMemory ?? null,
            editor_device: placement.editorDevice ?? null,
          },
          save_ckpt_interval: flags.saveCkptInterval,
          log_print_interval: flags.logInterval,
          ema_alpha: flags.emaAlpha,
          data_buffer_size: flags.dataBufferSize,
          seed,
          load_ckpt: checkpointJson,
          resumed_step: resume?.step ?? 0,
          editor_config: session.config,
          started: new Date().toISOString(),
          owner: ownerTag(),
          argv,
        });
        ctx.print(`run directory: ${runDir}`);
        return runDir;
      };
      const result = await trainLoop({
        trainer,
        schedule: session.schedule,
        samples: data.samples,
        batchSize: flags.batchSize,
        epochs: flags.epochs,
        saveEvery: flags.saveCkptInterval,
        logEvery: flags.logInterval,
        emaAlpha: flags.emaAlpha,
        bufferSize: flags.dataBufferSize,
        concurrency: session.prepareConcurrency ?? 1,
        runDir: createRun,
        checkpointModel: modelId,
        editorConfig: session.config,
        rng,
        resume,
        print: ctx.print,
        progress: (totalSteps, start) =>
          new Progress({
            total: totalSteps,
            start,
            label: "train",
            unit: "step",
            tty: ctx.tty,
            write: ctx.tty ? undefined : (text) => ctx.print(text.trimEnd()),
          }),
      });
      ctx.print(`trained ${result.steps} steps; ema loss ${result.emaLoss.toFixed(4)}`);
    } finally {
      await trainer.close();
    }
  });
}

if (import.meta.main) Deno.exit(await runTrain(Deno.args));

/**
 * `deno task test-edit`: lifelong-editing evaluation, as the original `test_vllm_edit.py`
 * (same flags, short and long; `--help` lists them). Edits `-sen` requests at a time (1 is
 * single editing), scores Rel., T-Gen., M-Gen., T-Loc., M-Loc. (and VLKEB portability with
 * `--split eval_onehop`), teacher-forced and greedy, and writes
 * `eval_results/<editor>/<model>/<EVAL_NAME>/sequential_edit_<N>/` (`results.json`,
 * `mean_results.json`, `config.json`, `metrics.svg`; `edited_states/` with `-saveckpt`), all
 * at once (temporary directories of a killed evaluation there are removed first). An existing
 * result directory is refused unless `--force`. `--edits-dir DIR` keeps the edits in a durable
 * expert repository in `DIR` as they are made (each chunk's edits are undone there when the
 * model is restored): after a crash, `DIR` holds every acknowledged edit of the chunk being
 * evaluated (`deno task infer --edits DIR`). Prints a closing table. Exit status 0 on success,
 * 1 on failure, 2 for bad usage.
 *
 * @example
 * ```sh
 * deno task test-edit -en liveedit -mn blip2 -sen 1000 -dvc cuda:0 -dn EVQA \
 *   -ckpt records/liveedit/blip2-opt-2.7b/EVQA/checkpoints
 * ```
 *
 * @module
 */
import { join, resolve } from "node:path";
import { CKPT_FLAG, DATASET_FLAGS, parseDataName, TARGET_FLAGS } from "../src/cli/common_flags.ts";
import { HELP_FLAG, UsageError } from "../src/cli/flags.ts";
import { loadTaskData } from "../src/cli/input_checks.ts";
import { openEditingModel } from "../src/cli/open_model.ts";
import { Progress } from "../src/cli/progress.ts";
import { resolveTarget, runTask, type TaskContext } from "../src/cli/task.ts";
import { DATA_NAMES, DATASETS, type Split } from "../src/data/datasets.ts";
import { evaluateSequential } from "../src/eval/evaluate.ts";
import { beginResultDir, checkResultDir, resultDir } from "../src/eval/output.ts";
import { metricsSvg } from "../src/eval/metrics_svg.ts";
import { meanResultsFile, roundFloats } from "../src/eval/results.ts";
import { summaryTable } from "../src/eval/table.ts";
import { writeFileAtomic, writeJsonAtomic } from "../src/io/atomic.ts";
import { removeDirLeftovers } from "../src/io/atomic_dir.ts";

/** The flags of `deno task test-edit`. */
const TEST_EDIT_FLAGS = {
  ...TARGET_FLAGS,
  sequentialEditN: {
    names: ["-sen", "--sequential-edit-n"],
    type: "int",
    required: true,
    min: 1,
    help: "edits before scoring (1: single editing)",
  },
  evalNamePrefix: {
    names: ["-enp", "--eval-name-prefix", "--eval-name-postfix"],
    type: "string",
    default: "",
    help: "added to the evaluation name: <DATA>-<enp> (the original's postfix)",
  },
  ...CKPT_FLAG,
  dataName: {
    names: ["-dn", "--data-name"],
    type: "string",
    required: true,
    help: `evaluation data set: ${DATA_NAMES.join(", ")}`,
  },
  dataSampleN: {
    names: ["-dsn", "--data-sample-n"],
    type: "int",
    min: 1,
    help: "use only the first N evaluation records",
  },
  saveCkpt: {
    names: ["-saveckpt", "--save-ckpt"],
    type: "boolean",
    help: "write the edited state of every chunk to edited_states/",
  },
  editsDir: {
    names: ["--edits-dir"],
    type: "string",
    metavar: "DIR",
    help: "keep the run's edits in a durable expert repository in DIR (new or empty): " +
      "a crash loses no acknowledged edit",
  },
  split: {
    names: ["--split"],
    type: "string",
    default: "eval",
    choices: ["eval", "eval_onehop"],
    help: "eval_onehop: VLKEB's eval_edit_onehop.json, with portability",
  },
  ...DATASET_FLAGS,
  evalResults: {
    names: ["--eval-results"],
    type: "string",
    default: "eval_results",
    metavar: "DIR",
    help: "where results are written",
  },
  force: { names: ["--force"], type: "boolean", help: "replace an existing result directory" },
  ...HELP_FLAG,
} as const;

const SPEC = {
  name: "test-edit",
  usage: "deno task test-edit -en EDITOR -mn MODEL -sen N -dn DATA [-ckpt PATH] [options]",
  description:
    "Evaluates lifelong editing (the original test_vllm_edit.py): edit N requests, score them,\n" +
    "restore, repeat. Writes eval_results/<editor>/<model>/<EVAL_NAME>/sequential_edit_<N>/.",
  flags: TEST_EDIT_FLAGS,
};

/** Refuses an `--edits-dir` that exists and is not an empty directory. */
function checkEditsDir(dir: string): void {
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw new UsageError(`--edits-dir ${dir}: ${(error as Error).message}`);
  }
  if (entries.length > 0) {
    throw new UsageError(
      `--edits-dir ${dir} is not empty: the evaluation starts from the unedited model; ` +
        "name a new directory",
    );
  }
}

/** Runs `deno task test-edit` with `argv`; resolves with the exit status. */
export function runTestEdit(argv: readonly string[], context: TaskContext = {}): Promise<number> {
  return runTask(SPEC, argv, context, async (flags, ctx) => {
    const dataName = parseDataName(flags.dataName);
    const split = flags.split as Split;
    if (DATASETS[dataName].files[split] === undefined) {
      throw new UsageError(`data set ${dataName} has no split ${split}`);
    }
    const target = await resolveTarget(ctx, flags);
    const { devices, editorName, entry, model } = target;
    const evalName = [dataName + (split === "eval_onehop" ? "-onehop" : ""), flags.evalNamePrefix]
      .filter((p) => p !== "").join("-");
    const dir = resultDir(
      resolve(ctx.cwd, flags.evalResults),
      editorName,
      model.name,
      evalName,
      flags.sequentialEditN,
    );
    for (const line of await removeDirLeftovers(dir)) ctx.print(`note: ${line}`);
    checkResultDir(dir, flags.force ?? false);
    const editsDir = flags.editsDir === undefined ? undefined : resolve(ctx.cwd, flags.editsDir);
    if (editsDir !== undefined) checkEditsDir(editsDir);
    const data = await loadTaskData(dataName, split, {
      dataRoot: target.dataRoot,
      model,
      limit: flags.dataSampleN,
      print: ctx.print,
    }, flags);
    if (data.samples.length < flags.sequentialEditN) {
      throw new UsageError(
        `-sen ${flags.sequentialEditN} is more than the ${data.samples.length} samples of ${data.file}`,
      );
    }
    if (flags.ckpt === undefined && entry.createTrainer !== undefined) {
      throw new UsageError(`editor ${editorName} needs a trained checkpoint: pass -ckpt PATH`);
    }
    const { editing, tokenizer, checkpoint } = await openEditingModel(target, {
      devices,
      placement: { ...target.placement, experts: flags.sequentialEditN },
      ckpt: flags.ckpt,
      cwd: ctx.cwd,
      editorConfig: flags.editorConfig,
      note: (line) => ctx.print(`note: ${line}`),
      editsDir,
    });
    for (const line of editing.notes ?? []) ctx.print(line);
    try {
      const pending = await beginResultDir(
        dir,
        flags.force ?? false,
        (line) => ctx.print(`note: ${line}`),
      );
      try {
        const started = new Date().toISOString();
        const statesDir = join(pending.tmp, "edited_states");
        const width = String(Math.floor(data.samples.length / flags.sequentialEditN) - 1).length;
        if (flags.saveCkpt) await Deno.mkdir(statesDir);
        const progress = new Progress({
          total: Math.floor(data.samples.length / flags.sequentialEditN) * flags.sequentialEditN,
          label: `test-edit sequential_edit_${flags.sequentialEditN}`,
          unit: "edit",
          tty: ctx.tty,
          write: ctx.tty ? undefined : (text) => ctx.print(text.trimEnd()),
        });
        const evaluation = await evaluateSequential({
          model: editing,
          samples: data.samples,
          editN: flags.sequentialEditN,
          decode: (ids) => tokenizer.decode([...ids]),
          afterEdits: flags.saveCkpt
            ? (c) =>
              editing.saveState(
                join(statesDir, `chunk_${String(c).padStart(width, "0")}.safetensors`),
              )
            : undefined,
          onProgress: (done) => progress.update(done),
        });
        progress.done();
        const means = meanResultsFile(evaluation.chunks);
        await writeJsonAtomic(join(pending.tmp, "results.json"), roundFloats(evaluation.chunks));
        await writeJsonAtomic(join(pending.tmp, "mean_results.json"), roundFloats(means));
        await writeFileAtomic(
          join(pending.tmp, "metrics.svg"),
          metricsSvg(means.total_mean, {
            title: `${editorName} on ${model.name}, ${evalName}: ` +
              `${flags.sequentialEditN} edit${flags.sequentialEditN > 1 ? "s" : ""} at a time`,
          }),
        );
        await writeJsonAtomic(join(pending.tmp, "config.json"), {
          editor_name: editorName,
          model_name: model.name,
          model_dir: model.dir,
          editor_ckpt_path: checkpoint,
          editor_config: editing.editorConfig ?? null,
          data_name: dataName,
          split,
          data_file: data.file,
          image_root: data.imageRoot,
          data_sample_n: flags.dataSampleN ?? null,
          samples: data.samples.length,
          skipped_records: data.skipped,
          skipped_record_indices: data.skippedRecords.map((r) => r.index),
          sequential_edit_n: flags.sequentialEditN,
          chunks: evaluation.chunks.length,
          samples_left_out: evaluation.dropped,
          evaluation_name: evalName,
          device: devices.join(","),
          placement: {
            split_layers: target.placement.splitLayers ?? null,
            max_memory: target.placement.maxMemory ?? null,
            editor_device: target.placement.editorDevice ?? null,
          },
          save_ckpt: flags.saveCkpt ?? false,
          edits_dir: editsDir ?? null,
          started,
          finished: new Date().toISOString(),
          argv,
        });
        await pending.commit();
        if (evaluation.dropped > 0) {
          ctx.print(
            `note: the last ${evaluation.dropped} samples do not fill a chunk of ` +
              `${flags.sequentialEditN} and were not evaluated (as the original)`,
          );
        }
        ctx.print(`results: ${dir}`);
        ctx.print(summaryTable(means.total_mean));
      } catch (error) {
        await pending.abort();
        throw error;
      }
    } finally {
      await editing.close();
    }
  });
}

if (import.meta.main) Deno.exit(await runTestEdit(Deno.args));

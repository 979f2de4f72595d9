/**
 * `deno task test-edit`: lifelong-editing evaluation, as the original `test_vllm_edit.py`
 * (same flags, short and long; `--help` lists them). Edits `-sen` requests at a time (1 is
 * single editing), scores Rel., T-Gen., M-Gen., T-Loc., M-Loc. (and VLKEB portability with
 * `--split eval_onehop`), teacher-forced (and greedy with `--greedy`), and writes
 * `eval_results/<editor>/<model>/<EVAL_NAME>/sequential_edit_<N>/` (`results.json`,
 * `mean_results.json`, `config.json`, `metrics.svg`; `edited_states/` with `-saveckpt`), all
 * at once (temporary directories of a killed evaluation there are removed first). An existing
 * result directory is refused unless `--force`. `--edits-dir DIR` keeps the edits in a durable
 * expert repository in `DIR` as they are made (each chunk's edits are undone there when the
 * model is restored): after a crash, `DIR` holds every acknowledged edit of the chunk being
 * evaluated (`deno task infer --edits DIR`). Prints a closing table. Exit status 0 on success,
 * 1 on failure, 2 for bad usage.
 *
 * The chunks are independent (the model is restored between them), so they can be spread:
 * - `--replicas R`: `-dvc` is cut into R equal device groups and R replica processes evaluate
 *   the chunks `r` modulo R (`--shard r/R` on group `r`, `src/cli/replica_processes.ts`); their
 *   shards are merged into the result directory in the original chunk order. A replica that
 *   fails stops the others, and nothing is written.
 * - `--shard I/N` (or `--shards N` with `I` from `JOB_COMPLETION_INDEX`): only the chunks `I`
 *   modulo N, written as a shard directory (`src/eval/shards.ts`; `--shard-dir`, default
 *   `<result dir>.shards/shard-I-of-N`) that `deno task merge-results` puts together with the
 *   others. A shard directory is written whole; running a complete shard again does nothing
 *   (`--force` recomputes it).
 *
 * @example
 * ```sh
 * deno task test-edit -en liveedit -mn blip2 -sen 1000 -dvc cuda:0 -dn EVQA \
 *   -ckpt records/liveedit/blip2-opt-2.7b/EVQA/checkpoints
 * ```
 *
 * @module
 */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
  CKPT_FLAG,
  DATASET_FLAGS,
  parseDataName,
  REPLICAS_FLAG,
  TARGET_FLAGS,
} from "../src/cli/common_flags.ts";
import { type Flags, formatFlags, HELP_FLAG, UsageError } from "../src/cli/flags.ts";
import { loadTaskData } from "../src/cli/input_checks.ts";
import { openEditingModel, resolveCheckpoint } from "../src/cli/open_model.ts";
import { Progress } from "../src/cli/progress.ts";
import { exitWithParent, runReplicaProcesses } from "../src/cli/replica_processes.ts";
import { parseShardFlags, SHARD_FLAGS } from "../src/cli/sharding.ts";
import { resolveTarget, runTask, type TaskContext, type TaskTarget } from "../src/cli/task.ts";
import { DATA_NAMES, DATASETS, type Split } from "../src/data/datasets.ts";
import { evaluateSequential } from "../src/eval/evaluate.ts";
import {
  beginResultDir,
  checkResultDir,
  type ResultConfig,
  resultDir,
  writeResultFiles,
} from "../src/eval/output.ts";
import {
  beginShard,
  defaultShardDir,
  finishShard,
  mergeShards,
  readShard,
  shardDirName,
  type ShardSpec,
  stateFileName,
  STATES_DIR,
  writeMerged,
} from "../src/eval/shards.ts";
import { summaryTable } from "../src/eval/table.ts";
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
  greedy: {
    names: ["--greedy"],
    type: "boolean",
    help: "also score greedy decoding (greedy_acc, generated): one generation per example, " +
      "several times the teacher-forced scoring's cost",
  },
  force: {
    names: ["--force"],
    type: "boolean",
    help: "replace an existing result directory (or shard directory)",
  },
  ...REPLICAS_FLAG,
  ...SHARD_FLAGS,
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

/** The flags as parsed. */
type TestEditFlags = Flags<typeof TEST_EDIT_FLAGS>;

/** What an evaluation is, before anything is computed. */
interface Plan {
  readonly target: TaskTarget;
  readonly data: Awaited<ReturnType<typeof loadTaskData>>;
  /** The result directory. */
  readonly dir: string;
  /** The resolved `-ckpt` (a checkpoint's JSON), or null. */
  readonly checkpoint: string | null;
  /** The settings every shard of this evaluation shares (`config.json` without the run). */
  readonly evaluation: ResultConfig;
  /** `--shard` / `--shards`. */
  readonly shard?: ShardSpec;
  /** The shard's directory. */
  readonly shardDir?: string;
  /** `--edits-dir`, resolved. */
  readonly editsDir?: string;
}

/** Checks the flags and the data and resolves what the evaluation is (see {@linkcode Plan}). */
async function planEvaluation(
  flags: TestEditFlags,
  ctx: Required<TaskContext>,
): Promise<Plan> {
  const dataName = parseDataName(flags.dataName);
  const split = flags.split as Split;
  if (DATASETS[dataName].files[split] === undefined) {
    throw new UsageError(`data set ${dataName} has no split ${split}`);
  }
  const target = await resolveTarget(ctx, flags);
  const { editorName, entry, model } = target;
  const shard = parseShardFlags(flags, Deno.env.toObject());
  if (shard !== undefined && target.replicas.length > 1) {
    throw new UsageError(
      "--replicas with --shard/--shards: run one shard per machine, or the replicas on one",
    );
  }
  if (flags.editsDir !== undefined && (shard !== undefined || target.replicas.length > 1)) {
    throw new UsageError("--edits-dir keeps one run's edits: not with --replicas or --shard");
  }
  const evalName = [dataName + (split === "eval_onehop" ? "-onehop" : ""), flags.evalNamePrefix]
    .filter((p) => p !== "").join("-");
  const dir = resultDir(
    resolve(ctx.cwd, flags.evalResults),
    editorName,
    model.name,
    evalName,
    flags.sequentialEditN,
  );
  const shardDir = shard === undefined
    ? undefined
    : resolve(ctx.cwd, flags.shardDir ?? defaultShardDir(dir, shard));
  for (const line of await removeDirLeftovers(shardDir ?? dir)) ctx.print(`note: ${line}`);
  if (shard === undefined) checkResultDir(dir, flags.force ?? false);
  const editsDir = flags.editsDir === undefined ? undefined : resolve(ctx.cwd, flags.editsDir);
  if (editsDir !== undefined) checkEditsDir(editsDir);
  const data = await loadTaskData(dataName, split, {
    dataRoot: target.dataRoot,
    model,
    limit: flags.dataSampleN,
    print: ctx.print,
  }, flags);
  const n = flags.sequentialEditN;
  if (data.samples.length < n) {
    throw new UsageError(
      `-sen ${n} is more than the ${data.samples.length} samples of ${data.file}`,
    );
  }
  if (flags.ckpt === undefined && entry.createTrainer !== undefined) {
    throw new UsageError(`editor ${editorName} needs a trained checkpoint: pass -ckpt PATH`);
  }
  const checkpoint = await resolveCheckpoint(
    target,
    flags.ckpt,
    ctx.cwd,
    (line) => ctx.print(`note: ${line}`),
  );
  const evaluation: ResultConfig = {
    editor_name: editorName,
    model_name: model.name,
    model_dir: model.dir,
    editor_ckpt_path: checkpoint,
    data_name: dataName,
    split,
    data_file: data.file,
    image_root: data.imageRoot,
    data_sample_n: flags.dataSampleN ?? null,
    samples: data.samples.length,
    skipped_records: data.skipped,
    skipped_record_indices: data.skippedRecords.map((r) => r.index),
    sequential_edit_n: n,
    chunks: Math.floor(data.samples.length / n),
    samples_left_out: data.samples.length % n,
    evaluation_name: evalName,
    save_ckpt: flags.saveCkpt ?? false,
    greedy: flags.greedy ?? false,
  };
  return { target, data, dir, checkpoint, evaluation, shard, shardDir, editsDir };
}

/** The placement flags as `config.json` records them. */
function placementConfig(target: TaskTarget) {
  return {
    split_layers: target.placement.splitLayers ?? null,
    max_memory: target.placement.maxMemory ?? null,
    editor_device: target.placement.editorDevice ?? null,
  };
}

/** Prints the closing lines of a finished evaluation. */
function report(ctx: Required<TaskContext>, plan: Plan, where: string, table?: string): void {
  const { samples_left_out: dropped, sequential_edit_n: n } = plan.evaluation;
  if ((dropped as number) > 0) {
    ctx.print(
      `note: the last ${dropped} samples do not fill a chunk of ${n} and were not evaluated ` +
        "(as the original)",
    );
  }
  ctx.print(where);
  if (table !== undefined) ctx.print(table);
}

/**
 * Whether the shard directory of `plan` is complete for this evaluation already (then there is
 * nothing to do); throws when it holds another evaluation's shard (unless `--force`).
 */
async function shardDone(plan: Plan, force: boolean): Promise<boolean> {
  const dir = plan.shardDir!;
  if (!existsSync(dir) || force) return false;
  const existing = await readShard(dir);
  // the settings known before the model is opened (the editor's config comes with the model)
  const same = existing.index === plan.shard!.index && existing.count === plan.shard!.count &&
    Object.entries(plan.evaluation).every(([k, v]) =>
      JSON.stringify(existing.evaluation[k]) === JSON.stringify(v)
    );
  if (!same) {
    throw new Error(
      `${dir} holds shard ${existing.index} of ${existing.count} of another evaluation ` +
        "(pass --force to replace it)",
    );
  }
  return true;
}

/** Opens the model and evaluates (all chunks, or the shard's) into the result or shard directory. */
async function evaluate(
  plan: Plan,
  flags: TestEditFlags,
  ctx: Required<TaskContext>,
  argv: readonly string[],
): Promise<void> {
  const { target, data, shard } = plan;
  const force = flags.force ?? false;
  if (shard !== undefined && await shardDone(plan, force)) {
    report(ctx, plan, `shard ${shard.index} of ${shard.count} is complete: ${plan.shardDir}`);
    return;
  }
  const { editing, tokenizer } = await openEditingModel(target, {
    devices: target.devices,
    placement: { ...target.placement, experts: flags.sequentialEditN },
    ckpt: plan.checkpoint ?? undefined,
    cwd: ctx.cwd,
    editorConfig: flags.editorConfig,
    note: (line) => ctx.print(`note: ${line}`),
    editsDir: plan.editsDir,
  });
  for (const line of editing.notes ?? []) ctx.print(line);
  // the editor's config (the run's, or --editor-config) goes next to its checkpoint
  const evaluationConfig: ResultConfig = Object.fromEntries(
    Object.entries(plan.evaluation).flatMap(([k, v]) =>
      k === "editor_ckpt_path"
        ? [[k, v], ["editor_config", editing.editorConfig ?? null]]
        : [[k, v]]
    ),
  ) as ResultConfig;
  try {
    const pending = shard === undefined
      ? await beginResultDir(plan.dir, force, (line) => ctx.print(`note: ${line}`))
      : await beginShard(plan.shardDir!, existsSync(plan.shardDir!));
    try {
      await editing.warmUp?.(); // start-up: compiling the sessions is not an edit's time
      const started = new Date().toISOString();
      const statesDir = join(pending.tmp, STATES_DIR);
      const total = plan.evaluation.chunks as number, n = flags.sequentialEditN;
      if (flags.saveCkpt) await Deno.mkdir(statesDir);
      const selected = shard === undefined ? total : Math.ceil((total - shard.index) / shard.count);
      const progress = new Progress({
        total: selected * n,
        label: `test-edit sequential_edit_${n}` +
          (shard === undefined ? "" : ` ${shardDirName(shard)}`),
        unit: "edit",
        tty: ctx.tty,
        write: ctx.tty ? undefined : (text) => ctx.print(text.trimEnd()),
      });
      const evaluation = await evaluateSequential({
        model: editing,
        samples: data.samples,
        editN: n,
        decode: (ids) => tokenizer.decode([...ids]),
        afterEdits: flags.saveCkpt
          ? (c) => editing.saveState(join(statesDir, stateFileName(c, total)))
          : undefined,
        onProgress: (done) => progress.update(done),
        greedy: flags.greedy ?? false,
        selectChunk: shard === undefined ? undefined : (c) => c % shard.count === shard.index,
      });
      progress.done();
      const run = {
        device: target.devices.join(","),
        placement: placementConfig(target),
        edits_dir: plan.editsDir ?? null,
        started,
        finished: new Date().toISOString(),
        argv: [...argv],
      };
      if (shard !== undefined) {
        const chunks = evaluation.indices.map((chunk, i) => ({
          chunk,
          results: evaluation.chunks[i],
        }));
        await finishShard(pending, shard, evaluationConfig, run, chunks);
        report(ctx, plan, `shard ${shard.index} of ${shard.count}: ${plan.shardDir}`);
        return;
      }
      const means = await writeResultFiles(pending.tmp, evaluation.chunks, {
        ...evaluationConfig,
        ...run,
      });
      await pending.commit();
      report(ctx, plan, `results: ${plan.dir}`, summaryTable(means.total_mean));
    } catch (error) {
      await pending.abort();
      throw error;
    }
  } finally {
    await editing.close();
  }
}

/**
 * `--replicas R`: the evaluation as R replica processes (shard `r` of R on device group `r`,
 * written into the result directory's temporary directory), merged in chunk order.
 */
async function evaluateOnReplicas(
  plan: Plan,
  flags: TestEditFlags,
  ctx: Required<TaskContext>,
  argv: readonly string[],
): Promise<void> {
  const groups = plan.target.replicas, count = groups.length;
  const caps = plan.target.placement.maxMemory;
  const pending = await beginResultDir(
    plan.dir,
    flags.force ?? false,
    (line) => ctx.print(`note: ${line}`),
  );
  try {
    const shardsRoot = join(pending.tmp, ".shards");
    const dirs = groups.map((_, r) => join(shardsRoot, shardDirName({ index: r, count })));
    const replicas = groups.map((group, r) => ({
      devices: group,
      argv: formatFlags(TEST_EDIT_FLAGS, {
        ...flags,
        device: group,
        // one --max-memory per device of -dvc: each replica gets its group's
        maxMemory:
          caps !== undefined && caps.length > 1 && caps.length === plan.target.devices.length
            ? flags.maxMemory!.slice(r * group.length, (r + 1) * group.length)
            : flags.maxMemory,
        ckpt: plan.checkpoint ?? undefined,
        replicas: undefined,
        shard: `${r}/${count}`,
        shards: undefined,
        shardDir: dirs[r],
        force: false,
      }),
    }));
    await runReplicaProcesses({
      entry: fileURLToPath(import.meta.url),
      replicas,
      cwd: ctx.cwd,
      print: ctx.print,
    });
    const merged = mergeShards(await Promise.all(dirs.map(readShard)));
    const means = await writeMerged(pending.tmp, merged, {
      device: plan.target.devices.join(","),
      replicas: groups.map((g) => g.join(",")),
      placement: placementConfig(plan.target),
      argv: [...argv],
    });
    await Deno.remove(shardsRoot, { recursive: true });
    await pending.commit();
    report(ctx, plan, `results: ${plan.dir}`, summaryTable(means.total_mean));
  } catch (error) {
    await pending.abort();
    throw error;
  }
}

/** Runs `deno task test-edit` with `argv`; resolves with the exit status. */
export function runTestEdit(argv: readonly string[], context: TaskContext = {}): Promise<number> {
  return runTask(SPEC, argv, context, async (flags, ctx) => {
    const plan = await planEvaluation(flags, ctx);
    if (plan.target.replicas.length > 1) await evaluateOnReplicas(plan, flags, ctx, argv);
    else await evaluate(plan, flags, ctx, argv);
  });
}

if (import.meta.main) {
  exitWithParent();
  Deno.exit(await runTestEdit(Deno.args));
}

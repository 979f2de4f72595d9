/**
 * `deno task demo [--out DIR] [--quick] [--fresh]`: LiveEdit end to end with no download and no
 * argument. It
 *
 * 1. writes a synthetic benchmark in the E-VQA layout (`make-synthetic`) to `DIR/data`;
 * 2. pretrains a tiny BLIP-2 OPT on it (600 steps on two CPU workers; cached under the graph
 *    cache, reused next time) and copies it to `DIR/demo-blip2`;
 * 3. trains a LiveEdit editor on it (`deno task train`, into `DIR/records`; its config,
 *    `tiny` with `lora_scale` 1 at the demo's learning-rate schedule, in
 *    `DIR/editor-config.json`);
 * 4. evaluates the unedited model (`-en none`) and sequential editing for N = 1, 10, 100
 *    (`deno task test-edit`, into `DIR/eval_results`);
 * 5. prints the metric table and writes `DIR/summary.json` and `DIR/metrics.svg`.
 *
 * `--quick` uses 1000 training records instead of 2000 (so its VLLM is another one, cached
 * apart), trains the editor 3000 steps instead of 6000 and scores the unedited model and N = 1
 * on half the evaluation records; it still meets the N = 10 targets, in under 3 minutes on 2
 * cores with pretraining (`deno task test` runs it). Exit status 0 on success (the
 * table says whether the N = 10 targets were met), 1 on failure, 2 for bad usage.
 *
 * @example
 * ```sh
 * deno task demo                 # everything into demo/
 * deno task demo --quick --out /tmp/demo
 * ```
 *
 * @module
 */
import { demoModel } from "../src/cli/demo/model.ts";
import {
  type DemoSummary,
  METRICS,
  type Metrics,
  metricsOf,
  metricsPlotSvg,
  summaryRows,
} from "../src/cli/demo/summary.ts";
import { HELP_FLAG } from "../src/cli/flags.ts";
import { Progress } from "../src/cli/progress.ts";
import { runTask, type TaskContext } from "../src/cli/task.ts";
import {
  readSyntheticManifest,
  syntheticManifest,
  writeSynthetic,
} from "../src/data/synthetic/write.ts";
import { LOOK_COUNT } from "../src/data/synthetic/scene.ts";
import { SHIPPED_CONFIGS } from "../src/editors/liveedit/config.ts";
import { resultDir } from "../src/eval/output.ts";
import type { MeanResultsFile } from "../src/eval/results.ts";
import { writeFileAtomic, writeJsonAtomic } from "../src/io/atomic.ts";
import { beginDir } from "../src/io/atomic_dir.ts";
import { join, resolve } from "node:path";
import { runTestEdit } from "./test_edit.ts";
import { runTrain } from "./train.ts";

/** The flags of `deno task demo`. */
const DEMO_FLAGS = {
  out: {
    names: ["--out"],
    type: "string",
    default: "demo",
    metavar: "DIR",
    help: "where everything is written",
  },
  quick: {
    names: ["--quick"],
    type: "boolean",
    help: "half the training records and editor steps (3000): under 3 minutes on 2 cores",
  },
  fresh: {
    names: ["--fresh"],
    type: "boolean",
    help: "pretrain the VLLM again even when the cache has it",
  },
  seed: { names: ["--seed"], type: "int", default: 0, min: 0, help: "seed of everything" },
  ...HELP_FLAG,
} as const;

const SPEC = {
  name: "demo",
  usage: "deno task demo [--out DIR] [--quick] [--fresh]",
  description: "LiveEdit end to end on a synthetic benchmark, with no download: data, a\n" +
    "pretrained tiny BLIP-2, a trained editor, lifelong editing for N = 1, 10, 100 and the\n" +
    "unedited model; writes DIR/summary.json and DIR/metrics.svg.",
  flags: DEMO_FLAGS,
} as const;

/** The sequential-edit counts evaluated. */
export const DEMO_NS = [1, 10, 100] as const;

/**
 * The targets for N = 10, the unedited model's reliability ceiling and the pretrained VLLM's
 * held-out accuracy floor.
 */
export const DEMO_TARGETS = {
  "Rel": 0.9,
  "T-Gen": 0.8,
  "M-Gen": 0.7,
  "T-Loc": 1.0,
  "M-Loc": 0.9,
  uneditedRel: 0.3,
  vllmAccuracy: 0.9,
} as const;

/** The model's name (and directory name under DIR). */
const MODEL_NAME = "demo-blip2";

/** What a full and a quick run do. */
export interface Plan {
  /** Training records of the benchmark. */
  readonly nTrain: number;
  /** Evaluation records of the benchmark. */
  readonly nEval: number;
  /** Editor training: epochs over the training records. */
  readonly editorEpochs: number;
  /** Editor training: the batch size. */
  readonly editorBatch: number;
  /** Records evaluated for the unedited model and N = 1 (N = 10 and 100 use all). */
  readonly fewSamples: number;
}

/**
 * The full run and `--quick`: 2000 or 1000 training records (24 epochs of batch 8: 6000 or 3000
 * editor steps), 100 evaluation records, of which the unedited model and N = 1 score all or half.
 * (Twice the steps on the 1000 records gave N = 10 M-Gen 0.78 against 0.91 in 3000: the editor
 * learns the training images; twice the records gave 0.96.)
 */
export const PLANS: Readonly<Record<"full" | "quick", Plan>> = {
  full: { nTrain: 2000, nEval: 100, editorEpochs: 24, editorBatch: 8, fewSamples: 100 },
  quick: { nTrain: 1000, nEval: 100, editorEpochs: 24, editorBatch: 8, fewSamples: 50 },
};

/** Runs `deno task demo` with `argv`; resolves with the exit status. */
export function runDemo(argv: readonly string[], context: TaskContext = {}): Promise<number> {
  return runTask(SPEC, argv, context, async (flags, ctx) => {
    const plan = PLANS[flags.quick ? "quick" : "full"];
    const out = resolve(ctx.cwd, flags.out);
    const t0 = performance.now();
    const elapsed = () => `${((performance.now() - t0) / 1000).toFixed(0)} s`;
    const sub = { ...ctx, print: (line: string) => ctx.print(`    ${line}`) };

    ctx.print(`[1/5] synthetic benchmark -> ${join(out, "data")}`);
    const dataRoot = join(out, "data");
    const data = syntheticManifest({
      nTrain: plan.nTrain,
      nEval: plan.nEval,
      seed: flags.seed,
    });
    const have = await readSyntheticManifest(dataRoot);
    if (JSON.stringify(have) === JSON.stringify(data)) {
      ctx.print("    reusing the data already there");
    } else {
      let progress: Progress | undefined;
      await writeSynthetic(dataRoot, {
        ...data,
        force: true,
        onProgress: (done, total) =>
          (progress ??= progressOf(ctx, "images", "image", total)).update(done),
      });
      progress?.done();
    }

    ctx.print(`[2/5] tiny BLIP-2 OPT pretrained on it (${elapsed()})`);
    let pretrainProgress: Progress | undefined;
    const model = await demoModel({
      dataRoot,
      data,
      fresh: flags.fresh ?? false,
      print: sub.print,
      onStep: (step, total, score) => {
        pretrainProgress ??= progressOf(ctx, "pretrain", "step", total);
        pretrainProgress.update(step, `loss ${score.loss.toFixed(3)}`);
      },
    });
    pretrainProgress?.done();
    const r = model.record;
    ctx.print(
      `    ${model.cached ? "cached" : "pretrained"}: ${model.dir} (${r.steps} steps, ` +
        `${r.seconds.toFixed(0)} s); held-out accuracy ${(100 * r.vllm_accuracy).toFixed(1)} %`,
    );
    const weak = weakVllmWarning(r.vllm_accuracy);
    if (weak !== undefined) ctx.print(`    ${weak}`);
    const modelDir = join(out, MODEL_NAME);
    await copyDir(model.dir, modelDir);

    ctx.print(`[3/5] LiveEdit editor trained on it (${elapsed()})`);
    const editorConfig = join(out, "editor-config.json");
    await writeJsonAtomic(editorConfig, demoEditorConfig(plan));
    const common = ["-mn", MODEL_NAME, "--model-dir", modelDir, "--editor-config", editorConfig];
    const data_ = ["--data-root", dataRoot];
    const records = join(out, "records");
    const runs = join(records, "liveedit", MODEL_NAME);
    const before = new Set(await listDir(runs));
    const trainArgs = [
      ...["-en", "liveedit", ...common, "-dna", "EVQA", ...data_],
      ...["-bs", `${plan.editorBatch}`, "-eps", `${plan.editorEpochs}`, "-sci", "100000"],
      ...["-lpi", "10", "-rs", `${flags.seed}`, "--records", records, "-tnp", "demo"],
      ...trainingDevices(navigator.hardwareConcurrency),
    ];
    sub.print(`deno task train ${trainArgs.join(" ")}`);
    if (await runTrain(trainArgs, sub) !== 0) throw new Error("training the editor failed");
    const run = (await listDir(runs)).filter((d) => !before.has(d)).sort().at(-1);
    if (run === undefined) throw new Error(`training wrote no run directory under ${runs}`);
    const runDir = join(runs, run);

    ctx.print(`[4/5] lifelong editing evaluated for N = ${DEMO_NS.join(", ")} (${elapsed()})`);
    const evalResults = join(out, "eval_results");
    const evaluate = async (editor: string, n: number, ckpt: string[]): Promise<Metrics> => {
      const few = n === 1 && plan.fewSamples < plan.nEval ? ["-dsn", `${plan.fewSamples}`] : [];
      const args = [
        ...["-en", editor, ...common, "-sen", `${n}`, "-dn", "EVQA", ...data_, ...ckpt, ...few],
        ...["--eval-results", evalResults, "--force"],
      ];
      sub.print(`deno task test-edit ${args.join(" ")}`);
      if (await runTestEdit(args, sub) !== 0) throw new Error(`evaluating ${editor} failed`);
      const file = join(resultDir(evalResults, editor, MODEL_NAME, "EVQA", n), "mean_results.json");
      const means: MeanResultsFile = JSON.parse(await Deno.readTextFile(file));
      return metricsOf(means.total_mean);
    };
    const unedited = await evaluate("none", 1, []);
    const byN: Record<string, Metrics> = {};
    for (const n of DEMO_NS) byN[`${n}`] = await evaluate("liveedit", n, ["-ckpt", runDir]);

    ctx.print(`[5/5] results (${elapsed()})`);
    const summary: DemoSummary = { vllm_accuracy: r.vllm_accuracy, unedited, ...byN };
    await writeJsonAtomic(join(out, "summary.json"), summary);
    await writeFileAtomic(join(out, "metrics.svg"), metricsPlotSvg(summary, DEMO_NS));
    ctx.print(`VLLM held-out accuracy: ${(100 * r.vllm_accuracy).toFixed(1)} %`);
    ctx.print("teacher-forced token accuracy %:");
    ctx.print(summaryRows(summary, DEMO_NS));
    ctx.print(
      `(N = ${DEMO_NS.at(-1)} is past the benchmark's ${LOOK_COUNT} looks, colour and kind: ` +
        "edits of one look asking one kind of question contradict each other, and image-locality " +
        "scenes of an edited look read as its rephrasings; see the README)",
    );
    const missed = missedTargets(summary);
    ctx.print(
      missed.length === 0
        ? "N = 10 targets met (Rel >= 90, T-Gen >= 80, M-Gen >= 70, T-Loc = 100, M-Loc >= 90; " +
          "unedited Rel <= 30; VLLM held out >= 90)"
        : `targets missed: ${missed.join(", ")}`,
    );
    ctx.print(`wrote ${join(out, "summary.json")} and ${join(out, "metrics.svg")} (${elapsed()})`);
  });
}

/**
 * The editor config of the demo: the shipped `tiny` one (the dims of the demo model) with
 * `lora_scale` 1, trained at a learning rate of 2e-3 cut tenfold after two thirds of the run's
 * steps. The experts' factors are divided by `lora_scale · sqrt(r)`: at d = 64 the shipped 5
 * left them too weak to move the answer (N = 10 Rel 0.77 after 3000 steps where 1 gives 0.95,
 * on the same model), and the shipped 5e-3 without a cut reached about 70 % after 3000 steps.
 * Fewer steps fall off fast (lora_scale 1: 0.75 after 2000 steps, 0.52 after 1500).
 */
export function demoEditorConfig(plan: Plan): Record<string, unknown> {
  const tiny = SHIPPED_CONFIGS.tiny as {
    readonly retrieval_editor: Record<string, unknown>;
    readonly train_cfg: Record<string, unknown>;
  };
  const steps = plan.editorEpochs * Math.ceil(plan.nTrain / plan.editorBatch);
  return {
    ...tiny,
    retrieval_editor: { ...tiny.retrieval_editor, lora_scale: 1 },
    train_cfg: { ...tiny.train_cfg, lr: 2e-3, lr_cut_it: [Math.round(steps * 2 / 3)] },
  };
}

/**
 * The editor's training devices on a machine with `cores` cores: with two or more, the step on
 * one single-threaded CPU worker and the frozen backbone preparing the next batches on another
 * (`-dvc cpu:0 -edvc cpu:1`), which on 2 cores trains about twice as fast as both on one
 * two-threaded session (the demo model's ops are too small to share between threads); else
 * the default.
 */
export function trainingDevices(cores: number): string[] {
  return cores >= 2 ? ["-dvc", "cpu:0", "-edvc", "cpu:1"] : [];
}

/**
 * A warning, printed before the editor is trained, when the pretrained VLLM answers fewer
 * held-out questions than the demo is set for (an editor cannot make a model answer what it
 * cannot read off the image); undefined when it answers enough.
 */
export function weakVllmWarning(accuracy: number): string | undefined {
  if (accuracy >= DEMO_TARGETS.vllmAccuracy) return undefined;
  return `warning: the VLLM answers ${(100 * accuracy).toFixed(1)} % of the held-out questions, ` +
    `below the ${100 * DEMO_TARGETS.vllmAccuracy} % the demo is set for: the editor's results ` +
    "will be weaker (--fresh pretrains it again)";
}

/** The targets (see {@linkcode DEMO_TARGETS}) that `summary` misses, as readable strings. */
export function missedTargets(summary: DemoSummary): string[] {
  const out: string[] = [];
  if (!(summary.vllm_accuracy >= DEMO_TARGETS.vllmAccuracy)) {
    out.push(`VLLM held-out accuracy ${summary.vllm_accuracy} < ${DEMO_TARGETS.vllmAccuracy}`);
  }
  const ten = summary["10"];
  for (const m of METRICS) {
    if (!(ten[m] >= DEMO_TARGETS[m])) out.push(`${m} ${ten[m]} < ${DEMO_TARGETS[m]}`);
  }
  if (!(summary.unedited.Rel <= DEMO_TARGETS.uneditedRel)) {
    out.push(`unedited Rel ${summary.unedited.Rel} > ${DEMO_TARGETS.uneditedRel}`);
  }
  return out;
}

function progressOf(
  ctx: { readonly tty: boolean; readonly print: (line: string) => void },
  label: string,
  unit: string,
  total: number,
) {
  return new Progress({
    total,
    label: `    ${label}`,
    unit,
    tty: ctx.tty,
    write: ctx.tty ? undefined : (text) => ctx.print(text.trimEnd()),
  });
}

/** The names in directory `dir` (none when it does not exist). */
async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) names.push(e.name);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return names;
}

/** Replaces directory `to` with a copy of the files of `from` (flat). */
async function copyDir(from: string, to: string): Promise<void> {
  const pending = await beginDir(to, { replace: true });
  try {
    for (const name of await listDir(from)) {
      await Deno.copyFile(join(from, name), join(pending.tmp, name));
    }
    await pending.commit();
  } catch (error) {
    await pending.abort();
    throw error;
  }
}

if (import.meta.main) Deno.exit(await runDemo(Deno.args));

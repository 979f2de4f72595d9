/**
 * `deno task bench:devices`: throughput of sequential evaluation and of training on one CPU
 * device against two (`cpu:0` and `cpu:1`, one intra-op thread each): `test-edit -dvc cpu:0`
 * against `test-edit --replicas 2 -dvc cpu:0,cpu:1` (two replica processes, the chunks
 * shared between them), and `train -dvc cpu:0` against `train --replicas 2 -dvc cpu:0,cpu:1`
 * (each replica a slice of every batch). The model is a make-tiny BLIP-2 widened so that the
 * decoder's work dominates (`--hidden`, `--layers`), with a matching editor config; graphs are
 * compiled once before anything is timed.
 *
 * Prints JSON lines: the machine (cores, load average), then one line per run
 * (`samples_per_s` over the whole command, and for the evaluation also over the replicas'
 * evaluation alone, without process start-up), then the speed-ups with the target (>= 1.8x for
 * the evaluation on 2 cores). Run it on a quiet machine: the numbers are wall-clock.
 *
 * ```sh
 * deno task bench:devices [--records 32] [--edits 4] [--hidden 384] [--layers 6] [--steps 12]
 * ```
 *
 * @module
 */
import { join } from "node:path";
import { parseFlags } from "../src/cli/flags.ts";
import { writeJsonAtomic } from "../src/io/atomic.ts";
import { runTestEdit } from "../tasks/test_edit.ts";
import { runTrain } from "../tasks/train.ts";
import { makeWorkspace, writeEditingCheckpoint } from "../tests/train/_workspace.ts";
import { writeTinyModel } from "../src/models/tiny/write.ts";

const FLAGS = {
  records: { names: ["--records"], type: "int", default: 32, min: 2, help: "samples" },
  edits: { names: ["--edits"], type: "int", default: 4, min: 1, help: "edits per chunk (-sen)" },
  hidden: { names: ["--hidden"], type: "int", default: 384, min: 8, help: "decoder width" },
  layers: { names: ["--layers"], type: "int", default: 6, min: 2, help: "decoder layers" },
  steps: { names: ["--steps"], type: "int", default: 12, min: 1, help: "training steps" },
  batch: { names: ["--batch"], type: "int", default: 8, min: 2, help: "batch size" },
} as const;

const flags = parseFlags(FLAGS, Deno.args);
const print = (value: unknown) => console.log(JSON.stringify(value));
const quiet = { tty: false, print: () => {}, printError: (l: string) => console.error(l) };

/** Runs `fn`, throwing when it does not succeed; its wall time in seconds. */
async function timed(what: string, fn: () => Promise<number>): Promise<number> {
  const t0 = performance.now();
  const code = await fn();
  if (code !== 0) throw new Error(`${what} failed with status ${code}`);
  return (performance.now() - t0) / 1000;
}

const dir = await Deno.makeTempDir({ prefix: "liveedit-bench-devices-" });
Deno.env.set("LIVEEDIT_CACHE", join(dir, "graphs"));
try {
  const ws = await makeWorkspace(dir, { records: flags.records });
  // the workspace's model, widened: the decoder's work dominates the host's
  await writeTinyModel(ws.modelDir, {
    arch: "blip2-opt",
    seed: 3,
    hidden: flags.hidden,
    layers: flags.layers,
    force: true,
  });
  const editorConfig = join(dir, "editor.json");
  const raw = JSON.parse(
    await Deno.readTextFile(new URL("../src/editors/liveedit/configs/tiny.json", import.meta.url)),
  );
  await writeJsonAtomic(editorConfig, {
    ...raw,
    llm_mid_dim: flags.hidden,
    edit_layer_i: Math.floor(flags.layers / 2),
  });
  const ckpt = await writeEditingCheckpoint(dir, "liveedit/tiny", editorConfig);
  const [load1, load5, load15] = Deno.loadavg();
  print({
    bench: "machine",
    cores: navigator.hardwareConcurrency,
    load: [load1, load5, load15],
    model: { arch: "blip2-opt", hidden: flags.hidden, layers: flags.layers },
  });

  // evaluation: 1 device, then 2 replicas
  const evalArgs = (root: string, devices: string, replicas: number) => [
    ...["-en", "liveedit", "-mn", "tiny", "--editor-config", editorConfig, "-dn", "EVQA"],
    ...["-ckpt", ckpt, "-sen", String(flags.edits), "--eval-results", root, "-dvc", devices],
    ...["--replicas", String(replicas)],
  ];
  await timed("warm-up", () => runTestEdit(evalArgs("warm", "cpu:0", 1), { cwd: dir, ...quiet }));
  const evaluated = Math.floor(flags.records / flags.edits) * flags.edits;
  const evalRuns: Record<number, number> = {};
  for (const [devices, replicas] of [["cpu:0", 1], ["cpu:0,cpu:1", 2]] as const) {
    const root = `eval-${replicas}`;
    const seconds = await timed(
      "test-edit",
      () => runTestEdit(evalArgs(root, devices, replicas), { cwd: dir, ...quiet }),
    );
    const config = JSON.parse(
      await Deno.readTextFile(
        join(dir, root, `liveedit/tiny/EVQA/sequential_edit_${flags.edits}/config.json`),
      ),
    );
    const runs: { started: string; finished: string }[] = config.shards ?? [config];
    const evalSeconds = Math.max(
      ...runs.map((r) => (Date.parse(r.finished) - Date.parse(r.started)) / 1000),
    );
    evalRuns[replicas] = evaluated / evalSeconds;
    print({
      bench: "test-edit",
      devices,
      replicas,
      samples: evaluated,
      seconds,
      samples_per_s: evaluated / seconds,
      evaluation_seconds: evalSeconds,
      evaluation_samples_per_s: evaluated / evalSeconds,
    });
  }

  // training: 1 device, then 2 replicas
  const perEpoch = Math.ceil(flags.records / flags.batch);
  const epochs = Math.ceil(flags.steps / perEpoch);
  const trainRuns: Record<number, number> = {};
  for (const [devices, replicas] of [["cpu:0", 1], ["cpu:0,cpu:1", 2]] as const) {
    const records = `records-${replicas}`;
    const args = [
      ...["-en", "liveedit", "-mn", "tiny", "--editor-config", editorConfig, "-dna", "EVQA"],
      ...["-bs", String(flags.batch), "-eps", String(epochs), "-rs", "1", "-sci", "100000"],
      ...["--records", records, "-dvc", devices, "--replicas", String(replicas)],
    ];
    const seconds = await timed("train", () => runTrain(args, { cwd: dir, ...quiet }));
    const runs = join(dir, records, "liveedit/tiny");
    const run = join(runs, [...Deno.readDirSync(runs)][0].name);
    const log = (await Deno.readTextFile(join(run, "logs/train.jsonl"))).trimEnd().split("\n")
      .map((l) => JSON.parse(l));
    // from the end of the first step (graphs compiled) to the end of the last
    const steps = log.length - 1;
    const samples = log.slice(1).reduce((n, l) => n + l.batch_size, 0);
    const stepSeconds = log.at(-1).elapsed_s - log[0].elapsed_s;
    trainRuns[replicas] = samples / stepSeconds;
    print({
      bench: "train",
      devices,
      replicas,
      steps: log.length,
      seconds,
      timed_steps: steps,
      samples_per_s: samples / stepSeconds,
    });
  }
  print({
    bench: "speedup",
    evaluation: evalRuns[2] / evalRuns[1],
    evaluation_target: 1.8,
    training: trainRuns[2] / trainRuns[1],
    load_after: Deno.loadavg(),
  });
} finally {
  await Deno.remove(dir, { recursive: true });
}

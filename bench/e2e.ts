/**
 * `deno task bench:e2e`: the whole path on a make-tiny BLIP-2 (4 OPT layers of width 64) and a
 * generated E-VQA-layout data set of 40 records: `train` for 100 steps (batch 4, 10 epochs),
 * then `test-edit -sen 10` (4 chunks of 10 sequential edits). Prints one JSON line:
 *
 * - `train_steps_per_s`: training steps per second (the last log line's step over its
 *   `elapsed_s`);
 * - `edit_ms`: the mean wall time of one edit (`edit_time` of the result file);
 * - `eval_ms`: the evaluation after start-up: from `config.json`'s `started` (the model open,
 *   the data loaded) to `finished` (the result files written);
 * - `eval_total_ms`: the whole `test-edit` call, start-up included;
 * - `greedy`: whether greedy (next-token) scoring ran (`--greedy` asks for it).
 *
 * ```sh
 * deno task bench:e2e [--greedy]
 * ```
 *
 * @module
 */
import { join } from "node:path";
import { runTestEdit } from "../tasks/test_edit.ts";
import { runTrain } from "../tasks/train.ts";
import { collect, makeWorkspace, withTempDir } from "../tests/train/_workspace.ts";

const RECORDS = 40, BATCH = 4, EPOCHS = 10, EDITS = 10;

/** Runs the bench; resolves with its JSON line's fields. */
async function bench(greedy: boolean): Promise<Record<string, unknown>> {
  let out: Record<string, unknown> = {};
  await withTempDir(async (dir) => {
    await makeWorkspace(dir, { records: RECORDS });
    const quiet = collect();
    const trained = await runTrain(
      [
        ...["-en", "liveedit", "-mn", "tiny", "-dna", "EVQA", "-bs", String(BATCH)],
        ...["-eps", String(EPOCHS), "-rs", "0", "--editor-config", "tiny"],
      ],
      { cwd: dir, tty: false, ...quiet },
    );
    if (trained !== 0) throw new Error(`train failed:\n${quiet.errors.join("\n")}`);
    const runs = join(dir, "records/liveedit/tiny");
    const run = join(runs, [...Deno.readDirSync(runs)][0].name);
    const log = (await Deno.readTextFile(join(run, "logs", "train.jsonl"))).trimEnd().split("\n");
    const last = JSON.parse(log[log.length - 1]);
    const t0 = performance.now();
    const evaluated = await runTestEdit(
      [
        ...["-en", "liveedit", "-mn", "tiny", "-dn", "EVQA", "-ckpt", run],
        ...["--editor-config", "tiny", "-sen", String(EDITS), ...(greedy ? ["--greedy"] : [])],
      ],
      { cwd: dir, tty: false, ...quiet },
    );
    const evalTotal = performance.now() - t0;
    if (evaluated !== 0) throw new Error(`test-edit failed:\n${quiet.errors.join("\n")}`);
    const results = join(dir, `eval_results/liveedit/tiny/EVQA/sequential_edit_${EDITS}`);
    const config = JSON.parse(await Deno.readTextFile(join(results, "config.json")));
    const chunks = JSON.parse(await Deno.readTextFile(join(results, "results.json")));
    const editTimes = chunks.flat().map((s: { reliability: { edit_time: number }[] }) =>
      s.reliability[0].edit_time
    );
    const mean = editTimes.reduce((a: number, b: number) => a + b, 0) / editTimes.length;
    const round = (x: number) => Math.round(x * 1000) / 1000;
    out = {
      records: RECORDS,
      train_steps: last.step,
      train_steps_per_s: round(last.step / last.elapsed_s),
      edits: editTimes.length,
      edit_ms: round(mean * 1000),
      eval_ms: Date.parse(config.finished) - Date.parse(config.started),
      eval_total_ms: Math.round(evalTotal),
      greedy: "greedy_acc" in chunks[0][0].reliability[0],
    };
  });
  return out;
}

if (import.meta.main) {
  const greedy = Deno.args.includes("--greedy");
  console.log(JSON.stringify(await bench(greedy)));
}

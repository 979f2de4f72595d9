/**
 * A before/after check of the whole `train` → `test-edit` path: a make-tiny BLIP-2 is trained
 * briefly with the real LiveEdit (seeded), then evaluated sequentially; `results.json` and
 * `mean_results.json` (and the training log's losses) must equal the files kept in
 * `tests/fixtures/eval_before/` (written by the code before the structural consolidation of
 * issue 8), timing fields and the temporary directory's name aside. The kept files have greedy
 * scoring, which `--greedy` now asks for; without it, they must equal the kept files less the
 * greedy fields.
 *
 * `LIVEEDIT_UPDATE_FIXTURES=1 deno test -A tests/tasks/eval_reference_test.ts` rewrites the
 * fixture (only when the change is meant to alter results).
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runTestEdit } from "../../tasks/test_edit.ts";
import { runTrain } from "../../tasks/train.ts";
import { collect, makeWorkspace, withoutKeys, withTempDir } from "../train/_workspace.ts";

const FIXTURE = new URL("../fixtures/eval_before/", import.meta.url).pathname;
const FILES = ["results.json", "mean_results.json"];
/** The training log's lines (losses, learning rates), kept beside the results. */
const LOG = "train_log.json";

/** Wall-clock fields: they differ from run to run. */
const TIMES = new Set(["edit_time", "samples_per_s", "time", "elapsed_s"]);

/** `value` without its wall-clock fields and with `dir` written `<dir>` in strings, deeply. */
function normalised(value: unknown, dir: string): unknown {
  if (typeof value === "string") return value.replaceAll(dir, "<dir>");
  if (Array.isArray(value)) return value.map((v) => normalised(v, dir));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).filter(([k]) => !TIMES.has(k)).map(([k, v]) => [k, normalised(v, dir)]),
    );
  }
  return value;
}

/** The greedy scoring's fields. */
const GREEDY = new Set(["generated", "greedy_acc"]);

/**
 * Trains and evaluates in a fresh workspace, with `--greedy` (as the kept files were written,
 * when greedy scoring was always on) and without; the timing-free result files by name
 * (`plain/<file>` without greedy).
 */
async function evaluateTiny(): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  await withTempDir(async (dir) => {
    await makeWorkspace(dir, { records: 8 });
    const quiet = collect();
    const trained = await runTrain(
      [
        ...["-en", "liveedit", "-mn", "tiny", "-dna", "EVQA", "-bs", "4", "-eps", "1"],
        ...["-rs", "2", "--editor-config", "tiny"],
      ],
      { cwd: dir, tty: false, ...quiet },
    );
    assert.equal(trained, 0, quiet.errors.join("\n"));
    const runs = join(dir, "records/liveedit/tiny");
    const run = join(runs, [...Deno.readDirSync(runs)][0].name);
    for (const greedy of [true, false]) {
      const evaluated = await runTestEdit(
        [
          ...["-en", "liveedit", "-mn", "tiny", "-dn", "EVQA", "-ckpt", run],
          ...["--editor-config", "tiny", "-sen", "4", "--force"],
          ...(greedy ? ["--greedy"] : []),
        ],
        { cwd: dir, tty: false, ...quiet },
      );
      assert.equal(evaluated, 0, quiet.errors.join("\n"));
      const results = join(dir, "eval_results/liveedit/tiny/EVQA/sequential_edit_4");
      for (const f of FILES) {
        const got = normalised(JSON.parse(await Deno.readTextFile(join(results, f))), dir);
        out[greedy ? f : `plain/${f}`] = got;
      }
    }
    const log = await Deno.readTextFile(join(run, "logs", "train.jsonl"));
    out[LOG] = normalised(log.trimEnd().split("\n").map((l) => JSON.parse(l)), dir);
  });
  return out;
}

Deno.test("train + test-edit -sen 4 on a make-tiny BLIP-2 give the kept results, timing aside", async () => {
  const got = await evaluateTiny();
  if (Deno.env.get("LIVEEDIT_UPDATE_FIXTURES") === "1") {
    await Deno.mkdir(FIXTURE, { recursive: true });
    for (const f of [...FILES, LOG]) {
      await Deno.writeTextFile(join(FIXTURE, f), JSON.stringify(got[f], null, 2) + "\n");
    }
  }
  for (const f of [...FILES, LOG]) {
    const want = JSON.parse(await Deno.readTextFile(join(FIXTURE, f)));
    assert.deepEqual(got[f], want, f);
    // without --greedy: the same files, less the greedy fields
    if (FILES.includes(f)) {
      assert.deepEqual(got[`plain/${f}`], withoutKeys(want, GREEDY), `plain/${f}`);
    }
  }
  // the chunks were really scored: two chunks of four, every prediction decoded
  const results = got["results.json"] as { reliability: { predict_after_edit: string }[] }[][];
  assert.equal(results.length, 2);
  assert.ok(results.every((c) => c.length === 4));
  assert.ok(results.flat().every((r) => typeof r.reliability[0].predict_after_edit === "string"));
});

/**
 * `deno task train` across devices on a make-tiny BLIP-2 with the real LiveEdit: 20 steps with
 * `-dvc cpu:0,cpu:1` (two stages) and with `--replicas 2 -dvc cpu:0,cpu:1` (two data-parallel
 * copies, each a slice of every batch) give the losses of `-dvc cpu` on the whole batch and the
 * same checkpoint.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { latestCheckpoint, loadCheckpoint } from "../../src/train/checkpoint.ts";
import { runTestEdit } from "../../tasks/test_edit.ts";
import { runTrain } from "../../tasks/train.ts";
import {
  collect,
  listFiles,
  makeWorkspace,
  withTempDir,
  writeEditingCheckpoint,
} from "../train/_workspace.ts";

/** One line of `train.jsonl`. */
interface LogLine {
  readonly step: number;
  readonly loss: number;
  readonly parts: Record<string, number>;
}

/** Trains with `devices` (and `extra` flags) into its own records folder; its log and checkpoint. */
async function train(dir: string, name: string, extra: string[]) {
  const out = collect();
  const code = await runTrain(
    [
      ...["-en", "liveedit", "-mn", "tiny", "--editor-config", "tiny", "-dna", "EVQA"],
      ...["-bs", "3", "-eps", "5", "-rs", "11", "-sci", "20", "--records", name, ...extra],
    ],
    { cwd: dir, tty: false, ...out },
  );
  assert.equal(code, 0, out.errors.join("\n"));
  const runs = join(dir, name, "liveedit/tiny");
  const run = join(runs, [...Deno.readDirSync(runs)][0].name);
  const log: LogLine[] = (await Deno.readTextFile(join(run, "logs/train.jsonl")))
    .trimEnd().split("\n").map((l) => JSON.parse(l));
  const info = await latestCheckpoint(join(run, "checkpoints"));
  assert.ok(info !== undefined, `${name}: a checkpoint`);
  const ckpt = await loadCheckpoint(info.jsonPath, { model: "liveedit/tiny" });
  return { log, ckpt, lines: out.lines };
}

Deno.test("train 20 steps: -dvc cpu:0,cpu:1 and --replicas 2 -dvc cpu:0,cpu:1 give -dvc cpu's losses and checkpoint", async () => {
  await withTempDir(async (dir) => {
    await makeWorkspace(dir, { records: 10 }); // batches of 3, 3, 3, 1: 4 steps per epoch
    const one = await train(dir, "one", ["-dvc", "cpu"]);
    const stages = await train(dir, "stages", ["-dvc", "cpu:0,cpu:1"]);
    const replicas = await train(dir, "replicas", ["-dvc", "cpu:0,cpu:1", "--replicas", "2"]);
    assert.ok(
      replicas.lines.some((l) => /data parallel: 2 replicas/.test(l)),
      replicas.lines.join("\n"),
    );
    assert.equal(one.log.length, 20);
    const lr = 0.005; // configs/tiny.json
    for (const [what, run] of [["stages", stages], ["replicas", replicas]] as const) {
      assert.equal(run.log.length, 20, what);
      run.log.forEach((line, i) => {
        const want = one.log[i];
        assert.equal(line.step, want.step);
        // the total to 1e-6 of itself; every part to 1e-6 of the total (a part near zero, the
        // locality KL, carries the rounding of the larger terms it is computed from)
        const bound = 1e-6 * Math.abs(want.loss);
        assert.ok(
          Math.abs(line.loss - want.loss) <= bound,
          `${what} step ${i + 1}: ${line.loss} vs ${want.loss}`,
        );
        for (const [part, v] of Object.entries(want.parts)) {
          assert.ok(
            Math.abs(line.parts[part] - v) <= bound,
            `${what} step ${i + 1} ${part}: ${line.parts[part]} vs ${v}`,
          );
        }
      });
      // the same checkpoint: step, epoch and data order exactly; the EMA loss to 1e-6; the
      // weights within a thousandth of the farthest Adam moves a weight in 20 steps (20 lr),
      // but the attention key biases, whose gradient is float noise (softmax ignores them)
      const a = one.ckpt, b = run.ckpt;
      assert.deepEqual([b.step, b.epoch, b.rng], [a.step, a.epoch, a.rng], what);
      assert.ok(Math.abs(b.emaLoss! - a.emaLoss!) <= 1e-6 * a.emaLoss!, what);
      assert.equal(b.adam.step, 20);
      for (const [name, t] of Object.entries(a.weights)) {
        if (/\.k_mlp\.bias$/.test(name)) continue;
        const x = t.data, y = b.weights[name].data;
        let worst = 0;
        for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]));
        assert.ok(worst <= 1e-3 * 20 * lr, `${what} ${name}: ${worst}`);
      }
    }
  });
});

Deno.test("train and test-edit --replicas 2 with a device that cannot be used fail naming it, writing nothing", async () => {
  await withTempDir(async (dir) => {
    await makeWorkspace(dir, { records: 4 });
    const out = collect();
    const code = await runTrain(
      [
        ...[
          "-en",
          "liveedit",
          "-mn",
          "tiny",
          "--editor-config",
          "tiny",
          "-dna",
          "EVQA",
          "-bs",
          "2",
        ],
        ...["-eps", "1", "--replicas", "2", "-dvc", "cpu:0,cuda:7"],
      ],
      { cwd: dir, tty: false, ...out },
    );
    assert.equal(code, 1, out.lines.join("\n"));
    assert.match(out.errors.join("\n"), /cuda:7/);
    assert.deepEqual(await listFiles(join(dir, "records")), []);

    const ckpt = await writeEditingCheckpoint(dir, "liveedit/tiny");
    const eval_ = collect();
    const status = await runTestEdit(
      [
        ...[
          "-en",
          "liveedit",
          "-mn",
          "tiny",
          "--editor-config",
          "tiny",
          "-dn",
          "EVQA",
          "-sen",
          "1",
        ],
        ...["-ckpt", ckpt, "--replicas", "2", "-dvc", "cpu:0,cuda:7"],
      ],
      { cwd: dir, tty: false, ...eval_ },
    );
    assert.equal(status, 1, eval_.lines.join("\n"));
    assert.match(
      eval_.errors.join("\n"),
      /replica 1 \(cuda:7, pid \d+\) exited with status 1: .*cuda:7.*; the other replicas were stopped and nothing was written/,
    );
    assert.deepEqual(await listFiles(join(dir, "eval_results")), []);
  });
});

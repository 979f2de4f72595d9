import assert from "node:assert/strict";
import { basename, join } from "node:path";
import { latestCheckpoint } from "../../src/train/checkpoint.ts";
import { ownerTag } from "../../src/io/leftovers.ts";
import { runTestEdit } from "../../tasks/test_edit.ts";
import { runTrain } from "../../tasks/train.ts";
import { type FakeOptions, fakeRegistry } from "../train/_fake_editor.ts";
import { collect, listFiles, makeWorkspace, withTempDir } from "../train/_workspace.ts";

async function train(cwd: string, argv: string[], options: FakeOptions = {}) {
  const out = collect();
  const code = await runTrain(
    ["-en", "fake", "-mn", "tiny", "-dna", "EVQA", "-bs", "4", "-rs", "3", ...argv],
    { editors: fakeRegistry(options), cwd, tty: false, ...out },
  );
  return { code, ...out };
}

/** The run directories under records/fake/tiny, sorted by name. */
async function runs(cwd: string): Promise<string[]> {
  const dir = join(cwd, "records", "fake", "tiny");
  try {
    return (await Array.fromAsync(Deno.readDir(dir))).filter((e) => e.isDirectory)
      .map((e) => join(dir, e.name)).sort();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
}

/** An owner tag of a process that has exited. */
async function deadTag(): Promise<string> {
  const child = new Deno.Command(Deno.execPath(), { args: ["eval", ""] }).spawn();
  await child.status;
  return `${ownerTag().split("-")[0]}-${child.pid}`;
}

Deno.test("a run that fails before its first step leaves no run directory", async () => {
  await withTempDir(async (dir) => {
    await makeWorkspace(dir);
    const r = await train(dir, ["-eps", "2", "-tnp", "P"], { nanAtStep: 1 });
    assert.equal(r.code, 1);
    assert.match(r.errors.join("\n"), /training stopped at step 1 \(epoch 1\).*no step was done/);
    assert.deepEqual(await runs(dir), []);
    assert.ok(!r.lines.some((l) => l.startsWith("run directory:")));
    // A run failing after its first step keeps its directory, log and checkpoint.
    const later = await train(dir, ["-eps", "2", "-tnp", "P"], { nanAtStep: 2 });
    assert.equal(later.code, 1);
    const [run] = await runs(dir);
    assert.equal((await latestCheckpoint(join(run, "checkpoints")))?.step, 1);
  });
});

Deno.test("-lkpt with a training name prefix, or a run without a complete checkpoint, takes the newest complete one and says which", async () => {
  await withTempDir(async (dir) => {
    await makeWorkspace(dir);
    const first = await train(dir, ["-eps", "2", "-sci", "2", "-tnp", "P"]);
    assert.equal(first.code, 0, first.errors.join("\n"));
    const [run] = await runs(dir);
    const newest = (await latestCheckpoint(join(run, "checkpoints")))!;
    assert.equal(newest.step, 6);
    // A later run of that name killed before its first checkpoint: no complete checkpoint.
    const empty = join(dir, "records/fake/tiny/P-2099.01.01-00.00.00");
    await Deno.mkdir(join(empty, "checkpoints"), { recursive: true });
    for (const lkpt of ["records/fake/tiny/P", empty]) {
      const r = await train(dir, ["-eps", "3", "-lkpt", lkpt, "-tnp", "Q"]);
      assert.equal(r.code, 0, r.errors.join("\n"));
      const note = r.lines.find((l) => l.startsWith("note: checkpoint "));
      assert.ok(note, r.lines.join("\n"));
      assert.ok(
        note.includes(
          `using the newest complete checkpoint of training name "P": ` +
            `${newest.jsonPath} (step 6)`,
        ),
        note,
      );
      assert.ok(r.lines.includes(`resuming from step 6: ${newest.jsonPath}`));
    }
    // A prefix nothing matches is still an error naming it.
    const none = await train(dir, ["-eps", "3", "-lkpt", "records/fake/tiny/Z"]);
    assert.equal(none.code, 1);
    assert.match(
      none.errors.join("\n"),
      /checkpoint .*records\/fake\/tiny\/Z: .*Z\.json does not exist/,
    );
  });
});

Deno.test("resuming removes what a killed run left behind, and leaves a live run alone", async () => {
  await withTempDir(async (dir) => {
    await makeWorkspace(dir);
    const first = await train(dir, ["-eps", "1", "-sci", "1", "-tnp", "P"]);
    assert.equal(first.code, 0, first.errors.join("\n"));
    const [run] = await runs(dir);
    const before = await listFiles(run);
    const config = JSON.parse(await Deno.readTextFile(join(run, "config.json")));
    assert.equal(config.owner, ownerTag(), "the run records its process");
    const dead = await deadTag();
    const leftovers = [
      `checkpoints/.epoch-1-i-4-ema_loss-0.9000.safetensors.${dead}.0a1b2c3d.tmp`,
      "checkpoints/epoch-1-i-4-ema_loss-0.9000.safetensors",
      `.config.json.${dead}.0a1b2c3d.tmp`,
      "logs/.losses.svg.5f2a4c1e-7d2b-4a9e-9c1d-2b3e4f5a6b7c.tmp",
    ];
    const plant = async () => {
      for (const f of leftovers) await Deno.writeTextFile(join(run, f), "partial");
    };
    await plant();
    // The run's process is still this one: nothing is touched.
    const live = await train(dir, ["-eps", "2", "-lkpt", run, "-tnp", "Q"]);
    assert.equal(live.code, 0, live.errors.join("\n"));
    assert.deepEqual(await listFiles(run), [...before, ...leftovers].sort());
    // Once the run's process is gone, the next run that resumes from it cleans up.
    await Deno.writeTextFile(join(run, "config.json"), JSON.stringify({ ...config, owner: dead }));
    const r = await train(dir, ["-eps", "2", "-lkpt", run, "-tnp", "R"]);
    assert.equal(r.code, 0, r.errors.join("\n"));
    assert.deepEqual(await listFiles(run), before);
    const notes = r.lines.filter((l) => l.includes("left by a killed run"));
    assert.deepEqual(
      notes.map((l) => basename(l.split(" ")[2].replace(/,$/, ""))).sort(),
      leftovers.map((f) => basename(f)).sort(),
    );
  });
});

Deno.test("test-edit removes the temporary directories a killed evaluation left", async () => {
  await withTempDir(async (dir) => {
    await makeWorkspace(dir, { records: 4 });
    const trained = await train(dir, ["-eps", "1", "-tnp", "P"]);
    assert.equal(trained.code, 0, trained.errors.join("\n"));
    const [run] = await runs(dir);
    const evalDir = join(dir, "eval_results/fake/tiny/EVQA");
    const dead = await deadTag();
    const tmp = join(evalDir, `.sequential_edit_2.tmp-${dead}-abc123`);
    const other = join(evalDir, `.sequential_edit_3.tmp-${ownerTag()}-def456`);
    await Deno.mkdir(join(tmp, "edited_states"), { recursive: true });
    await Deno.writeTextFile(join(tmp, "results.json"), "[");
    await Deno.mkdir(other, { recursive: true });
    const out = collect();
    const code = await runTestEdit(
      ["-en", "fake", "-mn", "tiny", "-dn", "EVQA", "-sen", "2", "-ckpt", run],
      { editors: fakeRegistry(), cwd: dir, tty: false, ...out },
    );
    assert.equal(code, 0, out.errors.join("\n"));
    assert.ok(
      out.lines.includes(`note: removed ${tmp}, left by a killed run`),
      out.lines.join("\n"),
    );
    const names = (await Array.fromAsync(Deno.readDir(evalDir))).map((e) => e.name).sort();
    assert.deepEqual(names, [basename(other), "sequential_edit_2"], "a live run's is kept");
  });
});

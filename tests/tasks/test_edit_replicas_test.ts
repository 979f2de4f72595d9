/**
 * Sequential evaluation spread over devices, on a make-tiny BLIP-2 with the real LiveEdit:
 * `-dvc cpu:0,cpu:1` (two stages), `--replicas 2` (two replica processes) and `--shard 0/2` +
 * `--shard 1/2` + `merge-results` write the `results.json` and `mean_results.json` of a
 * single-device run (timing aside); a replica killed mid-run ends the run naming its device,
 * with nothing written.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { hostName, processState } from "../../src/io/leftovers.ts";
import { runMergeResults } from "../../tasks/merge_results.ts";
import { runTestEdit } from "../../tasks/test_edit.ts";
import {
  collect,
  listFiles,
  makeWorkspace,
  timeless,
  withTempDir,
  writeEditingCheckpoint,
} from "../train/_workspace.ts";

const BASE = ["-en", "liveedit", "-mn", "tiny", "--editor-config", "tiny", "-dn", "EVQA"];

/** `test-edit` in this process; its output. */
async function testEdit(cwd: string, argv: string[]) {
  const out = collect();
  const code = await runTestEdit([...BASE, ...argv], { cwd, tty: false, ...out });
  assert.equal(code, 0, [...out.lines, ...out.errors].join("\n"));
  return out;
}

Deno.test("test-edit -dvc cpu:0,cpu:1, --replicas 2, and --shard 0/2 + 1/2 + merge-results give the single-device results", async () => {
  await withTempDir(async (dir) => {
    await makeWorkspace(dir, { records: 8 });
    const ckpt = await writeEditingCheckpoint(dir, "liveedit/tiny");
    const run = (root: string, extra: string[]) =>
      testEdit(dir, ["-ckpt", ckpt, "-sen", "2", "--eval-results", root, ...extra]);
    const where = (root: string) => join(dir, root, "liveedit/tiny/EVQA/sequential_edit_2");
    await run("single", ["-dvc", "cpu:0"]);
    await run("stages", ["-dvc", "cpu:0,cpu:1"]);
    const replicas = await run("replicas", ["-dvc", "cpu:0,cpu:1", "--replicas", "2"]);
    assert.ok(replicas.lines.some((l) => /^replica 1 on cpu:1: pid \d+$/.test(l)));
    assert.ok(replicas.lines.some((l) => l.startsWith("[replica 0 cpu:0] shard 0 of 2: ")));
    await run("shards", ["-dvc", "cpu:0", "--shard", "0/2"]);
    await run("shards", ["-dvc", "cpu:1", "--shard", "1/2"]);
    const out = collect();
    const shards = `${where("shards")}.shards`;
    const merged = await runMergeResults(
      [join(shards, "shard-0-of-2"), join(shards, "shard-1-of-2"), "--out", where("merged")],
      { cwd: dir, tty: false, ...out },
    );
    assert.equal(merged, 0, out.errors.join("\n"));

    const single = where("single");
    const results = await timeless(join(single, "results.json")) as unknown[][];
    assert.equal(results.length, 4, "4 chunks of 2");
    const means = JSON.parse(await Deno.readTextFile(join(single, "mean_results.json")));
    assert.ok(means.total_mean.locality.image_loc.acc < 1, "the edits change answers");
    for (const other of [where("stages"), where("replicas"), where("merged")]) {
      for (const f of ["results.json", "mean_results.json"]) {
        assert.deepEqual(
          await timeless(join(other, f)),
          await timeless(join(single, f)),
          `${other} ${f}`,
        );
      }
    }
    // the replicas' shards were merged and removed; the layout is a single run's
    assert.deepEqual(await listFiles(where("replicas")), await listFiles(single));
    const config = JSON.parse(await Deno.readTextFile(join(where("replicas"), "config.json")));
    assert.deepEqual(config.replicas, ["cpu:0", "cpu:1"]);
    assert.deepEqual(config.shards.map((s: { device: string }) => s.device), ["cpu:0", "cpu:1"]);
  });
});

Deno.test("test-edit --replicas 2: a replica killed mid-run ends the run naming its device; nothing is written", async () => {
  await withTempDir(async (dir) => {
    await makeWorkspace(dir, { records: 8 });
    const ckpt = await writeEditingCheckpoint(dir, "liveedit/tiny");
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        ...["run", "-A", new URL("../../tasks/test_edit.ts", import.meta.url).pathname],
        ...BASE,
        ...["-ckpt", ckpt, "-sen", "1", "-saveckpt", "--replicas", "2", "-dvc", "cpu:0,cpu:1"],
      ],
      cwd: dir,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const lines: string[] = [];
    const reading = (async () => {
      for await (const text of child.stdout.pipeThrough(new TextDecoderStream())) {
        lines.push(...text.split("\n"));
      }
    })();
    const stderr = new Response(child.stderr).text();
    // wait until replica 1 has edited a chunk (its saved state is in its shard's temporary
    // directory, and 7 chunks are left), then kill it
    const results = join(dir, "eval_results");
    let pid: number | undefined;
    let states: string[] = [];
    for (let i = 0; i < 4800 && (pid === undefined || states.length === 0); i++) {
      await new Promise((r) => setTimeout(r, 25));
      const m = lines.map((l) => /^replica 1 on cpu:1: pid (\d+)$/.exec(l)).find((x) => x);
      pid = m ? Number(m[1]) : undefined;
      states = (await listFiles(results)).filter((f) =>
        /shard-1-of-2.*\/edited_states\/chunk_\d\.safetensors$/.test(f)
      );
    }
    assert.ok(pid !== undefined && states.length > 0, lines.join("\n"));
    Deno.kill(pid, "SIGKILL");
    const status = await child.status;
    await reading;
    const errors = await stderr;
    assert.equal(status.code, 1, errors);
    assert.match(
      errors,
      new RegExp(`error: replica 1 \\(cpu:1, pid ${pid}\\) was killed by SIGKILL; the other`),
    );
    assert.deepEqual(await listFiles(results), [], "no partial results, no temporary left");
  });
});

Deno.test("test-edit --replicas 2 killed itself: its replicas exit, and the next run removes what it left", async () => {
  await withTempDir(async (dir) => {
    await makeWorkspace(dir, { records: 8 });
    const ckpt = await writeEditingCheckpoint(dir, "liveedit/tiny");
    const argv = [...BASE, "-ckpt", ckpt, "-sen", "1", "-saveckpt"];
    const parent = new Deno.Command(Deno.execPath(), {
      args: [
        ...["run", "-A", new URL("../../tasks/test_edit.ts", import.meta.url).pathname],
        ...argv,
        ...["--replicas", "2", "-dvc", "cpu:0,cpu:1"],
      ],
      cwd: dir,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const lines: string[] = [];
    const reading = (async () => {
      for await (const text of parent.stdout.pipeThrough(new TextDecoderStream())) {
        lines.push(...text.split("\n"));
      }
    })();
    // both replicas have started and edited something; then the parent is killed
    const results = join(dir, "eval_results");
    let pids: number[] = [];
    for (let i = 0; i < 4800; i++) {
      await new Promise((r) => setTimeout(r, 25));
      pids = lines.flatMap((l) => /^replica \d on cpu:\d: pid (\d+)$/.exec(l)?.slice(1) ?? [])
        .map(Number);
      const states = (await listFiles(results)).filter((f) => f.includes("/edited_states/"));
      if (pids.length === 2 && states.length > 0) break;
    }
    assert.equal(pids.length, 2, lines.join("\n"));
    parent.kill("SIGKILL");
    assert.equal((await parent.status).signal, "SIGKILL");
    await reading;
    // the replicas see their stdin close and exit
    for (let i = 0; i < 2400 && pids.some((p) => processState(p, hostName()) !== "gone"); i++) {
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.deepEqual(pids.map((p) => processState(p, hostName())), ["gone", "gone"]);
    assert.ok((await listFiles(results)).length > 0, "the killed run left its temporary directory");
    // the next run cleans up after it and writes the results
    const out = await testEdit(dir, ["-ckpt", ckpt, "-sen", "1", "-dvc", "cpu:0"]);
    assert.ok(
      out.lines.some((l) => /^note: removed .*left by a killed run$/.test(l)),
      out.lines.join("\n"),
    );
    assert.deepEqual(await listFiles(results), [
      "liveedit/tiny/EVQA/sequential_edit_1/config.json",
      "liveedit/tiny/EVQA/sequential_edit_1/mean_results.json",
      "liveedit/tiny/EVQA/sequential_edit_1/metrics.svg",
      "liveedit/tiny/EVQA/sequential_edit_1/results.json",
    ]);
  });
});

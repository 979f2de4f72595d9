/**
 * Sharded `test-edit` (`--shard I/N`, `--shards N`) and `deno task merge-results`, with the
 * fake editor: the merged directory equals a single run's (timing aside), a complete shard is
 * not evaluated again, and incomplete or clashing sets are refused without writing.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runMergeResults } from "../../tasks/merge_results.ts";
import { runTestEdit } from "../../tasks/test_edit.ts";
import { fakeRegistry } from "../train/_fake_editor.ts";
import {
  collect,
  fakeCheckpoint,
  listFiles,
  makeWorkspace,
  timeless,
  withTempDir,
} from "../train/_workspace.ts";

async function testEdit(cwd: string, argv: string[]) {
  const out = collect();
  const code = await runTestEdit(argv, { editors: fakeRegistry(), cwd, tty: false, ...out });
  return { code, ...out };
}

async function merge(cwd: string, argv: string[]) {
  const out = collect();
  const code = await runMergeResults(argv, { cwd, tty: false, ...out });
  return { code, ...out };
}

Deno.test("test-edit --shard 0/2 + --shards 2 (JOB_COMPLETION_INDEX=1) + merge-results = one run, timing aside", async () => {
  await withTempDir(async (dir) => {
    await makeWorkspace(dir, { records: 11 }); // 5 chunks of 2, one sample left out
    const ckpt = await fakeCheckpoint(dir);
    const base = ["-en", "fake", "-mn", "tiny", "-dn", "EVQA", "-sen", "2", "-ckpt", ckpt];
    const root = join(dir, "eval_results/fake/tiny/EVQA");
    const single = await testEdit(dir, [...base, "-saveckpt"]);
    assert.equal(single.code, 0, single.errors.join("\n"));

    const s0 = await testEdit(dir, [...base, "-saveckpt", "--shard", "0/2"]);
    assert.equal(s0.code, 0, s0.errors.join("\n"));
    const previous = Deno.env.get("JOB_COMPLETION_INDEX");
    Deno.env.set("JOB_COMPLETION_INDEX", "1");
    let s1;
    try {
      s1 = await testEdit(dir, [...base, "-saveckpt", "--shards", "2"]);
    } finally {
      if (previous === undefined) Deno.env.delete("JOB_COMPLETION_INDEX");
      else Deno.env.set("JOB_COMPLETION_INDEX", previous);
    }
    assert.equal(s1.code, 0, s1.errors.join("\n"));
    const shards = join(root, "sequential_edit_2.shards");
    assert.deepEqual(await listFiles(shards), [
      "shard-0-of-2/edited_states/chunk_0.safetensors",
      "shard-0-of-2/edited_states/chunk_2.safetensors",
      "shard-0-of-2/edited_states/chunk_4.safetensors",
      "shard-0-of-2/results.json",
      "shard-0-of-2/shard.json",
      "shard-1-of-2/edited_states/chunk_1.safetensors",
      "shard-1-of-2/edited_states/chunk_3.safetensors",
      "shard-1-of-2/results.json",
      "shard-1-of-2/shard.json",
    ]);

    // a complete shard is not evaluated again
    const meta = join(shards, "shard-0-of-2/shard.json");
    const before = await Deno.readTextFile(meta);
    const again = await testEdit(dir, [...base, "-saveckpt", "--shard", "0/2"]);
    assert.equal(again.code, 0, again.errors.join("\n"));
    assert.ok(again.lines.some((l) => /shard 0 of 2 is complete: .*shard-0-of-2/.test(l)));
    assert.equal(await Deno.readTextFile(meta), before);
    // ... and one of another evaluation is refused
    const clash = await testEdit(dir, [...base, "-dsn", "8", "--shard", "0/2"]);
    assert.equal(clash.code, 1);
    assert.match(clash.errors[0], /shard-0-of-2 holds shard 0 of 2 of another evaluation/);

    // an incomplete set is refused and writes nothing
    const out = join(dir, "merged");
    const half = await merge(dir, [join(shards, "shard-1-of-2"), "--out", out]);
    assert.equal(half.code, 1);
    assert.match(half.errors[0], /incomplete set of 2 shards: shard 0 missing/);
    assert.deepEqual(await listFiles(out), []);

    const merged = await merge(dir, [
      join(shards, "shard-1-of-2"),
      join(shards, "shard-0-of-2"),
      "--out",
      out,
    ]);
    assert.equal(merged.code, 0, merged.errors.join("\n"));
    assert.ok(merged.lines.some((l) => /merged 2 shards \(5 chunks\)/.test(l)));
    const one = join(root, "sequential_edit_2");
    for (const f of ["results.json", "mean_results.json"]) {
      assert.deepEqual(await timeless(join(out, f)), await timeless(join(one, f)), f);
    }
    assert.deepEqual(await listFiles(out), await listFiles(one));
    for (const c of [0, 3]) {
      const state = `edited_states/chunk_${c}.safetensors`;
      assert.equal(
        await Deno.readTextFile(join(out, state)),
        await Deno.readTextFile(join(one, state)),
      );
    }
    const config = JSON.parse(await Deno.readTextFile(join(out, "config.json")));
    const oneConfig = JSON.parse(await Deno.readTextFile(join(one, "config.json")));
    for (const k of ["editor_ckpt_path", "samples", "chunks", "samples_left_out", "data_file"]) {
      assert.deepEqual(config[k], oneConfig[k], k);
    }
    // the out directory is not replaced without --force
    const twice = await merge(dir, [
      join(shards, "shard-0-of-2"),
      join(shards, "shard-1-of-2"),
      "--out",
      out,
    ]);
    assert.equal(twice.code, 1);
    assert.match(twice.errors[0], /merged exists/);
    const bare = await merge(dir, ["--out", out]);
    assert.equal(bare.code, 2);
    assert.match(bare.errors[0], /no shard directory given/);
  });
});

Deno.test("test-edit sharding flags: usage errors, nothing written", async () => {
  await withTempDir(async (dir) => {
    await makeWorkspace(dir, { records: 4 });
    const ckpt = await fakeCheckpoint(dir);
    const base = ["-en", "fake", "-mn", "tiny", "-dn", "EVQA", "-sen", "1", "-ckpt", ckpt];
    const cases: [string[], RegExp][] = [
      [["--shard", "2/2"], /--shard 2\/2: the shard index must be in 0\.\.1/],
      [["--shard", "0/2", "--shards", "2"], /--shard and --shards: give one of them/],
      [["--shard", "0/2", "--replicas", "2", "-dvc", "cpu:0,cpu:1"], /--replicas with --shard/],
      [
        ["--replicas", "2", "-dvc", "cpu:0,cpu:1,cpu:2"],
        /--replicas 2 needs a multiple of 2 devices/,
      ],
      [["--shard", "0/2", "--edits-dir", "e"], /--edits-dir keeps one run's edits/],
    ];
    for (const [extra, re] of cases) {
      const r = await testEdit(dir, [...base, ...extra]);
      assert.equal(r.code, 2, extra.join(" "));
      assert.match(r.errors[0], re);
    }
    assert.deepEqual(await listFiles(join(dir, "eval_results")), []);
  });
});

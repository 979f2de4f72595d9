import assert from "node:assert/strict";
import { join } from "node:path";
import { writeResultFiles } from "../../src/eval/output.ts";
import type { SampleResult } from "../../src/eval/results.ts";
import {
  beginShard,
  defaultShardDir,
  finishShard,
  inShard,
  mergeShards,
  readShard,
  type Shard,
  shardChunks,
  type ShardSpec,
  stateFileName,
  writeMerged,
} from "../../src/eval/shards.ts";
import { Rng } from "../../src/tensor/rng.ts";
import { listFiles } from "../train/_workspace.ts";

/** A per-sample result with awkward floats (so rounding order matters). */
function sample(index: number, rng: Rng): SampleResult {
  const row = () => ({ prompt: `p${index}`, acc: rng.uniform(), greedy_acc: rng.int(2) });
  return {
    index,
    reliability: [{ ...row(), edit_time: rng.uniform() / 3 }],
    generality: { text_rephrase: [row()], image_rephrase: [row()] },
    locality: { text_loc: [row()], image_loc: [row()] },
  };
}

const EVALUATION = {
  editor_name: "fake",
  model_name: "tiny",
  evaluation_name: "EVQA",
  sequential_edit_n: 2,
  chunks: 5,
  samples: 11,
};

/** The 5 chunks of 2 samples of the tests. */
function allChunks(): SampleResult[][] {
  const rng = new Rng(3);
  return Array.from({ length: 5 }, (_, c) => [sample(2 * c, rng), sample(2 * c + 1, rng)]);
}

/** Writes shard `spec` of `chunks` into `dir` (a state file per chunk); returns its directory. */
async function writeShard(
  root: string,
  spec: ShardSpec,
  chunks: SampleResult[][],
  evaluation: Record<string, unknown> = EVALUATION,
): Promise<string> {
  const dir = defaultShardDir(join(root, "sequential_edit_2"), spec);
  const pending = await beginShard(dir, false);
  const mine = shardChunks(spec, chunks.length);
  await Deno.mkdir(join(pending.tmp, "edited_states"));
  for (const c of mine) {
    await Deno.writeTextFile(join(pending.tmp, "edited_states", stateFileName(c, 5)), `state ${c}`);
  }
  const run = {
    device: `cpu:${spec.index}`,
    started: `2026-0${spec.index + 1}`,
    finished: "x",
    argv: [],
  };
  await finishShard(
    pending,
    spec,
    evaluation,
    run,
    mine.map((c) => ({ chunk: c, results: chunks[c] })),
  );
  return dir;
}

Deno.test("shard chunks: index mod N; default directory and state names", () => {
  assert.deepEqual(shardChunks({ index: 1, count: 3 }, 8), [1, 4, 7]);
  assert.deepEqual(shardChunks({ index: 2, count: 3 }, 2), []);
  assert.ok(inShard(7, { index: 3, count: 4 }) && !inShard(7, { index: 0, count: 4 }));
  assert.equal(defaultShardDir("/r/seq_1", { index: 0, count: 2 }), "/r/seq_1.shards/shard-0-of-2");
  assert.equal(stateFileName(3, 12), "chunk_03.safetensors");
  assert.equal(stateFileName(0, 1), "chunk_0.safetensors");
});

Deno.test("two shards merge into the files of one run: results.json and mean_results.json byte for byte", async () => {
  const root = await Deno.makeTempDir({ prefix: "liveedit-shards-" });
  try {
    const chunks = allChunks();
    const dirs = [
      await writeShard(root, { index: 1, count: 2 }, chunks),
      await writeShard(root, { index: 0, count: 2 }, chunks),
    ];
    const shards = await Promise.all(dirs.map(readShard));
    assert.deepEqual(shards.map((s) => s.chunks.map((c) => c.chunk)), [[1, 3], [0, 2, 4]]);
    const merged = mergeShards(shards);
    assert.deepEqual(merged.chunks, chunks);
    const single = join(root, "single"), out = join(root, "merged");
    await Deno.mkdir(single);
    await Deno.mkdir(out);
    await writeResultFiles(single, chunks, EVALUATION);
    await writeMerged(out, merged, { argv: ["merge"] });
    for (const f of ["results.json", "mean_results.json", "metrics.svg"]) {
      assert.equal(
        await Deno.readTextFile(join(out, f)),
        await Deno.readTextFile(join(single, f)),
        f,
      );
    }
    const config = JSON.parse(await Deno.readTextFile(join(out, "config.json")));
    assert.equal(config.chunks, 5);
    assert.equal(config.device, "cpu:0 cpu:1");
    assert.equal(config.started, "2026-01");
    assert.deepEqual(config.shards.map((s: { shard: number }) => s.shard), [0, 1]);
    assert.deepEqual(config.argv, ["merge"]);
    assert.deepEqual(
      await listFiles(join(out, "edited_states")),
      [0, 1, 2, 3, 4].map((c) => `chunk_${c}.safetensors`),
    );
    assert.equal(
      await Deno.readTextFile(join(out, "edited_states", "chunk_3.safetensors")),
      "state 3",
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("merge refuses incomplete, repeated, mismatched and damaged shard sets, naming them", async () => {
  const root = await Deno.makeTempDir({ prefix: "liveedit-shards-" });
  try {
    const chunks = allChunks();
    const s0 = await readShard(await writeShard(root, { index: 0, count: 3 }, chunks));
    const s2 = await readShard(await writeShard(root, { index: 2, count: 3 }, chunks));
    assert.throws(() => mergeShards([]), /no shard directory given/);
    assert.throws(
      () => mergeShards([s0, s2]),
      /incomplete set of 3 shards: shard 1 missing \(given: .*shard-0-of-3, .*shard-2-of-3\)/,
    );
    assert.throws(() => mergeShards([s0, s0]), /shard 0 of 3 is given twice/);
    const other = await readShard(
      await writeShard(join(root, "b"), { index: 1, count: 3 }, chunks, {
        ...EVALUATION,
        model_name: "big",
      }),
    );
    assert.throws(
      () => mergeShards([s0, other, s2]),
      /are shards of different evaluations: model_name is "big" and "tiny"/,
    );
    const two = await readShard(await writeShard(join(root, "c"), { index: 1, count: 2 }, chunks));
    assert.throws(() => mergeShards([s0, two]), /is shard 1 of 2, .* of 3/);
    const wrong: Shard = { ...s2, index: 1 };
    assert.throws(() => mergeShards([s0, wrong, s2]), /holds chunks \[2\], expected \[1, 4\] of 5/);
    // damaged directories are named with the file
    const dir = join(root, "damaged");
    await Deno.mkdir(dir);
    await assert.rejects(readShard(dir), /shard\.json is missing: not a complete shard directory/);
    await Deno.writeTextFile(join(dir, "shard.json"), JSON.stringify({ format: "other" }));
    await assert.rejects(readShard(dir), /shard\.json: not a liveedit-eval-shard file/);
    const good = JSON.parse(await Deno.readTextFile(join(s0.dir, "shard.json")));
    await Deno.writeTextFile(join(dir, "shard.json"), JSON.stringify({ ...good, chunks: [0] }));
    await Deno.copyFile(join(s0.dir, "results.json"), join(dir, "results.json"));
    await assert.rejects(
      readShard(dir),
      /results\.json holds chunks \[0, 3\], .*shard\.json lists \[0\]/,
    );
    await Deno.writeTextFile(join(dir, "shard.json"), JSON.stringify({ ...good, version: 9 }));
    await assert.rejects(readShard(dir), /shard\.json: version 9, this reads 1/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

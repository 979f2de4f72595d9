/**
 * The placement flags of the tasks with the real LiveEdit on a make-tiny BLIP-2 (4 decoder
 * layers, edit layer 2): `--max-memory` that cannot fit fails before anything is loaded, with
 * every device's numbers; a run split over `cpu:0,cpu:1` (`--split-layers 3`, the data-
 * processing copy split over `-edvc cpu:2,cpu:3`) prints its placement and trains with the
 * losses of one device; a bad flag is a usage error.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runTrain } from "../../tasks/train.ts";
import { collect, listFiles, makeWorkspace, withTempDir } from "../train/_workspace.ts";

const BASE = ["-en", "liveedit", "-mn", "tiny", "-dna", "EVQA", "--editor-config", "tiny"];

async function train(dir: string, argv: string[]) {
  const out = collect();
  const code = await runTrain([...BASE, "-bs", "2", "-eps", "1", "-rs", "7", ...argv], {
    cwd: dir,
    tty: false,
    ...out,
  });
  return { code, ...out };
}

/** The logged total losses of the run whose name starts with `prefix`. */
async function lossesOf(dir: string, prefix: string): Promise<number[]> {
  const runs = join(dir, "records/liveedit/tiny");
  const run = [...Deno.readDirSync(runs)].find((e) => e.name.startsWith(`${prefix}-`))!;
  const text = await Deno.readTextFile(join(runs, run.name, "logs/train.jsonl"));
  return text.trimEnd().split("\n").map((l) => JSON.parse(l).loss);
}

Deno.test("train -dvc cpu:0,cpu:1 --max-memory too small: fails before loading, with the numbers", async () => {
  await withTempDir(async (dir) => {
    await makeWorkspace(dir, { records: 4 });
    const r = await train(dir, ["-dvc", "cpu:0,cpu:1", "--max-memory", "1MiB"]);
    assert.equal(r.code, 1);
    const message = r.errors.join("\n");
    assert.match(message, /does not fit --max-memory: cpu:0 needs [\d.]+ MiB > 1\.0 MiB/);
    assert.match(message, /cpu:1: layers? [\d-]+, norm \+ head; parameters [\d.]+ KiB/);
    // nothing compiled (no session was made) and no run directory
    assert.deepEqual(await listFiles(Deno.env.get("LIVEEDIT_CACHE")!), []);
    assert.deepEqual(await listFiles(join(dir, "records")), []);
    const bad = await train(dir, ["-dvc", "cpu:0,cpu:1", "--split-layers", "1,2"]);
    assert.equal(bad.code, 2);
    assert.match(bad.errors[0], /--split-layers: 2 cuts for 2 devices of -dvc/);
    const size = await train(dir, ["--max-memory", "lots"]);
    assert.equal(size.code, 2);
    assert.match(size.errors[0], /--max-memory: "lots" is not a size/);
  });
});

Deno.test("train split over cpu:0,cpu:1 (and -edvc cpu:2,cpu:3) prints its placement and repeats one device's losses", async () => {
  await withTempDir(async (dir) => {
    await makeWorkspace(dir, { records: 4 });
    const one = await train(dir, ["-tnp", "one"]);
    assert.equal(one.code, 0, one.errors.join("\n"));
    assert.ok(!one.lines.some((l) => l.includes("placement")), "one device prints no placement");
    const split = await train(dir, [
      "-tnp",
      "split",
      "-dvc",
      "cpu:0,cpu:1",
      "--split-layers",
      "3",
      "-edvc",
      "cpu:2,cpu:3",
      "--max-memory",
      "64MiB",
    ]);
    assert.equal(split.code, 0, split.errors.join("\n"));
    const text = split.lines.join("\n");
    assert.match(text, /training placement \(f32 weights; reserve for 8 x \d+ tokens/);
    assert.match(text, /cpu:0: vision, embeddings, layers 0-2, editor; parameters/);
    assert.match(text, /cpu:1: layer 3, norm \+ head; parameters .* \(max 64\.0 MiB\)/);
    assert.match(text, /data processing \(-edvc\) placement/);
    assert.match(text, /cpu:3: layer 3, norm \+ head/);
    const [a, b] = [await lossesOf(dir, "one"), await lossesOf(dir, "split")];
    assert.equal(a.length, 2);
    a.forEach((x, i) => assert.ok(Math.abs(x - b[i]) <= 1e-6 * Math.abs(x), `${x} vs ${b[i]}`));
  });
});

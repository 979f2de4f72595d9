import assert from "node:assert/strict";
import { join } from "node:path";
import { loadDataset } from "../../src/data/datasets.ts";
import { runMakeSynthetic } from "../../tasks/make_synthetic.ts";
import { collect } from "../train/_workspace.ts";

async function run(cwd: string, argv: string[]) {
  const out = collect();
  const code = await runMakeSynthetic(argv, { cwd, print: out.print, printError: out.printError });
  return { code, ...out };
}

Deno.test("make-synthetic writes a data root the E-VQA loader reads; bad usage exits 2", async () => {
  const dir = await Deno.makeTempDir({ prefix: "liveedit-make-synthetic-" });
  try {
    const ok = await run(dir, ["--out", "syn", "--n-train", "5", "--n-eval", "3", "--seed", "2"]);
    assert.equal(ok.code, 0, ok.errors.join("\n"));
    const summary = JSON.parse(ok.lines.at(-1)!);
    assert.deepEqual(
      [summary.nTrain, summary.nEval, summary.seed, summary.imageSize, summary.images],
      [5, 3, 2, 32, 24],
    );
    assert.equal(summary.dir, join(dir, "syn"));
    const { samples } = await loadDataset("EVQA", "eval", { dataRoot: join(dir, "syn") });
    assert.equal(samples.length, 3);
    const again = await run(dir, ["--out", "syn"]);
    assert.equal(again.code, 1);
    assert.match(again.errors.join("\n"), /not empty \(pass --force to replace it\)/);
    assert.equal((await run(dir, ["--out", "syn", "--force", "--n-train", "2"])).code, 0);
    const bad = await run(dir, ["--out", "x", "--n-train", "0"]);
    assert.equal(bad.code, 2);
    assert.match(bad.errors.join("\n"), /--n-train/);
    assert.equal((await run(dir, [])).code, 2, "--out is required");
    const help = await run(dir, ["--help"]);
    assert.equal(help.code, 0);
    assert.match(help.lines.join("\n"), /--n-eval/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

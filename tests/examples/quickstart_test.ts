import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { writeSynthetic } from "../../src/data/synthetic/write.ts";
import { writeTinyModel } from "../../src/models/tiny/write.ts";
import { writeJsonAtomic } from "../../src/io/atomic.ts";
import { runTrain } from "../../tasks/train.ts";
import { collect, withTempDir } from "../train/_workspace.ts";
import { runNotebook } from "./_notebook.ts";

const NOTEBOOK = new URL("../../examples/quickstart.ipynb", import.meta.url).pathname;

/**
 * A directory in the layout `deno task demo` writes, made quickly: a random-weight tiny
 * BLIP-2 as `demo-blip2`, a small synthetic benchmark, an editor trained for two steps and a
 * `summary.json`.
 */
async function fakeDemo(dir: string): Promise<string> {
  const demo = join(dir, "demo");
  await writeSynthetic(join(demo, "data"), { nTrain: 4, nEval: 2, seed: 1, imageSize: 32 });
  await writeTinyModel(join(demo, "demo-blip2"), { arch: "blip2-opt", seed: 1 });
  const out = collect();
  const code = await runTrain([
    ...["-en", "liveedit", "-mn", "demo-blip2", "--model-dir", join(demo, "demo-blip2")],
    ...["--editor-config", "tiny", "-dna", "EVQA", "--data-root", join(demo, "data")],
    ...["-bs", "2", "-eps", "1", "-rs", "0", "--records", join(demo, "records"), "-tnp", "demo"],
  ], { cwd: dir, tty: false, print: out.print, printError: out.printError });
  assert.equal(code, 0, out.errors.join("\n"));
  const m = { "Rel": 1, "T-Gen": 0.9, "M-Gen": 0.8, "T-Loc": 1, "M-Loc": 0.95 };
  await writeJsonAtomic(join(demo, "summary.json"), {
    vllm_accuracy: 0.97,
    unedited: { ...m, Rel: 0.05 },
    "1": m,
    "10": m,
    "100": m,
  });
  return demo;
}

Deno.test("examples/quickstart.ipynb: every code cell runs, in order, without Jupyter", async () => {
  await withTempDir(async (dir) => {
    const demo = await fakeDemo(dir);
    const run = await runNotebook(NOTEBOOK, {
      env: { LIVEEDIT_DEMO: demo, LIVEEDIT_CACHE: Deno.env.get("LIVEEDIT_CACHE")! },
    });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.failedCell, null);
    assert.match(run.stdout, /, 0 edits/);
    assert.match(run.stdout, /the edited question/);
    assert.match(run.stdout, /after restore: /);
    assert.match(run.stdout, /VLLM held-out accuracy 97\.0 %/);
  });
});

Deno.test("a notebook cell that throws is named by its number", async () => {
  const dir = await Deno.makeTempDir({ prefix: "liveedit-notebook-broken-" });
  try {
    const notebook = JSON.parse(await Deno.readTextFile(NOTEBOOK));
    const code = notebook.cells.flatMap((c: { cell_type: string }, i: number) =>
      c.cell_type === "code" ? [i] : []
    );
    // the second code cell throws: the first (imports, no files needed) runs before it
    notebook.cells[code[1]].source = ['throw new Error("broken on purpose");\n'];
    const copy = join(dir, "broken.ipynb");
    await Deno.writeTextFile(copy, JSON.stringify(notebook));
    // the copy runs as if it were in examples/, so its first code cell's imports load
    const run = await runNotebook(copy, { dir: dirname(NOTEBOOK) });
    assert.equal(run.code, 1);
    assert.equal(run.failedCell, code[1] + 1);
    assert.match(
      run.stderr,
      new RegExp(`notebook cell ${code[1] + 1} failed: Error: broken on purpose`),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * The one slow test: `deno task demo --quick` (the README's first command, the editor trained
 * 3000 steps) end to end in a temporary directory, with a temporary graph cache (so the VLLM is
 * pretrained here, as on a fresh machine), then the quickstart notebook on its output. It checks
 * the N = 10 targets on `summary.json`. About 2½ minutes on 2 cores, pretraining included.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { METRICS } from "../../src/cli/demo/summary.ts";
import { parseConfig } from "../../src/editors/liveedit/config.ts";
import {
  DEMO_TARGETS,
  demoEditorConfig,
  missedTargets,
  PLANS,
  trainingDevices,
  weakVllmWarning,
} from "../../tasks/demo.ts";
import { runNotebook } from "../examples/_notebook.ts";

const ROOT = new URL("../..", import.meta.url).pathname;

Deno.test({
  name: "deno task demo --quick meets the N = 10 targets; the notebook runs on its output",
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "liveedit-demo-" });
  try {
    const out = join(dir, "demo"), cache = join(dir, "cache");
    const t0 = performance.now();
    const run = await new Deno.Command(Deno.execPath(), {
      args: ["task", "demo", "--quick", "--out", out],
      cwd: ROOT,
      env: { LIVEEDIT_CACHE: cache },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(run.stdout);
    const stderr = new TextDecoder().decode(run.stderr);
    console.log(`demo: ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    assert.equal(run.code, 0, `${stdout.slice(-3000)}\n${stderr.slice(-3000)}`);
    const summary = JSON.parse(await Deno.readTextFile(join(out, "summary.json")));
    assert.deepEqual(Object.keys(summary).sort(), ["1", "10", "100", "unedited", "vllm_accuracy"]);
    for (const key of ["unedited", "1", "10", "100"]) {
      assert.deepEqual(Object.keys(summary[key]).sort(), [...METRICS].sort(), key);
    }
    console.log(JSON.stringify(summary));
    assert.ok(
      summary.vllm_accuracy >= DEMO_TARGETS.vllmAccuracy,
      `VLLM accuracy ${summary.vllm_accuracy}`,
    );
    const ten = summary["10"];
    assert.ok(ten.Rel >= DEMO_TARGETS.Rel, `Rel ${ten.Rel}`);
    assert.ok(ten["T-Gen"] >= DEMO_TARGETS["T-Gen"], `T-Gen ${ten["T-Gen"]}`);
    assert.ok(ten["M-Gen"] >= DEMO_TARGETS["M-Gen"], `M-Gen ${ten["M-Gen"]}`);
    assert.equal(ten["T-Loc"], 1, `T-Loc ${ten["T-Loc"]}`);
    assert.ok(ten["M-Loc"] >= DEMO_TARGETS["M-Loc"], `M-Loc ${ten["M-Loc"]}`);
    assert.ok(
      summary.unedited.Rel <= DEMO_TARGETS.uneditedRel,
      `unedited Rel ${summary.unedited.Rel}`,
    );
    assert.match(await Deno.readTextFile(join(out, "metrics.svg")), /^<svg/);
    assert.match(stdout, /N = 10 targets met/);
    assert.match(stdout, /N = 100 is past the benchmark's 32 looks/);

    const notebook = await runNotebook(join(ROOT, "examples", "quickstart.ipynb"), {
      env: { LIVEEDIT_DEMO: out, LIVEEDIT_CACHE: cache },
    });
    assert.equal(notebook.code, 0, notebook.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("demo: the editor trains on two CPU workers when there are two cores", () => {
  assert.deepEqual(trainingDevices(1), []);
  assert.deepEqual(trainingDevices(2), ["-dvc", "cpu:0", "-edvc", "cpu:1"]);
  assert.deepEqual(trainingDevices(16), ["-dvc", "cpu:0", "-edvc", "cpu:1"]);
});

Deno.test("demo: missedTargets names each N = 10 metric and the VLLM accuracy below its target", () => {
  const m = (rel: number, mLoc: number) => ({
    "Rel": rel,
    "T-Gen": 0.8,
    "M-Gen": 0.7,
    "T-Loc": 1,
    "M-Loc": mLoc,
  });
  const summary = (ten: ReturnType<typeof m>, unedited: ReturnType<typeof m>) => ({
    vllm_accuracy: 1,
    unedited,
    "1": ten,
    "10": ten,
    "100": ten,
  });
  assert.deepEqual(missedTargets(summary(m(0.9, 0.9), m(0.3, 1))), []);
  assert.deepEqual(missedTargets(summary(m(0.89, 0.95), m(0.31, 1))), [
    "Rel 0.89 < 0.9",
    "unedited Rel 0.31 > 0.3",
  ]);
  assert.deepEqual(missedTargets(summary(m(0.95, NaN), m(0, 1))), ["M-Loc NaN < 0.9"]);
  assert.deepEqual(missedTargets({ ...summary(m(0.9, 0.9), m(0, 1)), vllm_accuracy: 0.89 }), [
    "VLLM held-out accuracy 0.89 < 0.9",
  ]);
  assert.deepEqual(missedTargets({ ...summary(m(0.9, 0.9), m(0, 1)), vllm_accuracy: NaN }), [
    "VLLM held-out accuracy NaN < 0.9",
  ]);
});

Deno.test("demo: a VLLM below 90 % held-out accuracy is warned of before the editor trains", () => {
  assert.equal(weakVllmWarning(0.9), undefined);
  assert.equal(weakVllmWarning(0.994), undefined);
  assert.match(
    weakVllmWarning(0.875) ?? "",
    /answers 87\.5 % of the held-out questions, below the 90 %/,
  );
  assert.match(weakVllmWarning(NaN) ?? "", /answers NaN %/);
});

Deno.test("demo: the editor config is tiny's with lora_scale 1, the lr cut after 2/3 of the steps", () => {
  for (const [plan, steps] of [[PLANS.quick, 3000], [PLANS.full, 6000]] as const) {
    assert.equal(plan.editorEpochs * Math.ceil(plan.nTrain / plan.editorBatch), steps);
    const config = parseConfig(demoEditorConfig(plan), "demo");
    assert.equal(config.dims.loraScale, 1);
    assert.equal(config.train.lr, 2e-3);
    assert.deepEqual(config.train.lrCutIt, [steps * 2 / 3]);
  }
});

/**
 * A run carries its editor config: `train` stores it in the run's `config.json` and in every
 * checkpoint; `test-edit`, `infer` and `train -lkpt` read it from there, `--editor-config`
 * only overrides it (checked against the weights and the model); `--edit-layer-twice` is
 * recorded and kept on resume.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { SHIPPED_CONFIGS } from "../../src/editors/liveedit/config.ts";
import { writeTinyModel } from "../../src/models/tiny/write.ts";
import { findCheckpoint } from "../../src/train/records.ts";
import { runInfer } from "../../tasks/infer.ts";
import { runTestEdit } from "../../tasks/test_edit.ts";
import { runTrain } from "../../tasks/train.ts";
import { collect, listFiles, makeWorkspace, withTempDir } from "../train/_workspace.ts";

type Json = Record<string, Record<string, unknown>>;

const TRAIN = ["-en", "liveedit", "-mn", "tiny", "-dna", "EVQA", "-bs", "2", "-rs", "2"];
const TEST_EDIT = ["-en", "liveedit", "-mn", "tiny", "-dn", "EVQA", "-sen", "1", "-dsn", "2"];

/** Runs a task in `cwd`; returns its exit status and what it printed. */
async function run(
  task: (argv: string[], ctx: object) => Promise<number>,
  cwd: string,
  argv: string[],
) {
  const out = collect();
  const code = await task(argv, { cwd, tty: false, ...out });
  return { code, ...out };
}

/** The only run directory under `records/liveedit/tiny` whose name starts with `prefix`. */
function runDir(dir: string, prefix: string): string {
  const runs = join(dir, "records/liveedit/tiny");
  const names = [...Deno.readDirSync(runs)].map((e) => e.name).filter((n) => n.startsWith(prefix));
  assert.equal(names.length, 1, `runs ${prefix}: ${names}`);
  return join(runs, names[0]);
}

const readJson = async (path: string) => JSON.parse(await Deno.readTextFile(path));

Deno.test("test-edit, infer and train -lkpt without --editor-config on a run trained with a non-default config", async () => {
  await withTempDir(async (dir) => {
    const ws = await makeWorkspace(dir, { records: 4 });
    // dims other than the shipped tiny config's (module_dim 32, eqe_n 4, lora_rank 4)
    const custom = structuredClone(SHIPPED_CONFIGS.tiny) as Json;
    Object.assign(custom.retrieval_editor, { module_dim: 16, eqe_n: 2, lora_rank: 2 });
    custom.edit_layer_i = 1 as unknown as Record<string, unknown>;
    const file = join(dir, "custom.json");
    await Deno.writeTextFile(file, JSON.stringify(custom));
    const stored = { ...custom, train_cfg: { ...custom.train_cfg, edit_layer_twice: false } };

    const trained = await run(
      runTrain,
      dir,
      [...TRAIN, "-eps", "1", "-tnp", "custom"].concat(
        ["--editor-config", file],
      ),
    );
    assert.equal(trained.code, 0, trained.errors.join("\n"));
    const run1 = runDir(dir, "custom-");
    assert.deepEqual((await readJson(join(run1, "config.json"))).editor_config, stored);
    const ckpt = await findCheckpoint(run1);
    assert.deepEqual((await readJson(ckpt)).editorConfig, stored);

    // test-edit reads the stored config; the evaluation's config.json records it
    const evaluated = await run(runTestEdit, dir, [...TEST_EDIT, "-ckpt", run1]);
    assert.equal(evaluated.code, 0, evaluated.errors.join("\n"));
    const evalDir = join(dir, "eval_results/liveedit/tiny/EVQA/sequential_edit_1");
    assert.deepEqual((await readJson(join(evalDir, "config.json"))).editor_config, stored);

    // infer too
    const inferred = await run(runInfer, dir, [
      ...["-mn", "tiny", "-ckpt", run1, "--image", "data/easy-edit-mm/images/val2014/img0.png"],
      ...["--prompt", "What is shown? The answer is:", "--max-new-tokens", "2"],
    ]);
    assert.equal(inferred.code, 0, inferred.errors.join("\n"));
    assert.equal(inferred.lines.length, 1);

    // train -lkpt resumes with it, and stores it again
    const resumed = await run(
      runTrain,
      dir,
      [...TRAIN, "-eps", "2", "-tnp", "resumed"].concat(
        ["-lkpt", run1],
      ),
    );
    assert.equal(resumed.code, 0, resumed.errors.join("\n"));
    const run2 = runDir(dir, "resumed-");
    assert.deepEqual((await readJson(await findCheckpoint(run2))).editorConfig, stored);

    // --editor-config overrides; dims that do not fit the weights are refused, naming the
    // file, the checkpoint (in its run directory) and each dim; nothing is written
    await Deno.remove(join(dir, "eval_results"), { recursive: true });
    const wrongDims = await run(runTestEdit, dir, [
      ...TEST_EDIT,
      ...["-ckpt", run1, "--editor-config", "tiny"],
    ]);
    assert.equal(wrongDims.code, 1);
    const message = wrongDims.errors.join("\n");
    assert.match(message, /--editor-config shipped configs\/tiny\.json: its dims do not fit/);
    assert.ok(message.includes(`checkpoint ${ckpt}`), message);
    assert.ok(ckpt.startsWith(run1));
    assert.match(message, /retrieval_editor\.module_dim 32 \(trained with 16\)/);
    assert.deepEqual(await listFiles(join(dir, "eval_results")), []);

    // a checkpoint of an older version (no stored config) works as before: --editor-config
    const old = await readJson(ckpt);
    delete old.editorConfig;
    await Deno.writeTextFile(ckpt, JSON.stringify(old));
    const fromOld = await run(runTestEdit, dir, [
      ...TEST_EDIT,
      "-ckpt",
      run1,
      "--editor-config",
      file,
    ]);
    assert.equal(fromOld.code, 0, fromOld.errors.join("\n"));
    await Deno.remove(join(dir, "eval_results"), { recursive: true });

    // a stored config that does not fit the model: the error names the checkpoint and the model
    await Deno.remove(ws.modelDir, { recursive: true });
    await writeTinyModel(ws.modelDir, { arch: "blip2-opt", seed: 3, hidden: 32 });
    const misfit = await run(runTestEdit, dir, [...TEST_EDIT, "-ckpt", run2]);
    assert.equal(misfit.code, 1);
    const misfitMessage = misfit.errors.join("\n");
    assert.match(
      misfitMessage,
      /LiveEdit config for tiny-blip2-opt \(stored in checkpoint .*\): llm_mid_dim 64 differs from the hidden size 32 of the model in /,
    );
    assert.ok(misfitMessage.includes(run2), misfitMessage);
    assert.ok(misfitMessage.includes(ws.modelDir), misfitMessage);
    assert.deepEqual(await listFiles(join(dir, "eval_results")), []);
  });
});

Deno.test("train --edit-layer-twice: recorded in the run's config and checkpoints, other losses than one pass, kept on resume", async () => {
  await withTempDir(async (dir) => {
    await makeWorkspace(dir, { records: 4 });
    const base = [...TRAIN, "--editor-config", "tiny"];
    const once = await run(runTrain, dir, [...base, "-eps", "1", "-tnp", "once"]);
    assert.equal(once.code, 0, once.errors.join("\n"));
    const twice = await run(runTrain, dir, [
      ...base,
      "-eps",
      "1",
      "-tnp",
      "twice",
      "--edit-layer-twice",
    ]);
    assert.equal(twice.code, 0, twice.errors.join("\n"));
    assert.ok(twice.lines.some((l) => /note: training as the released code does/.test(l)));
    const [onceRun, twiceRun] = [runDir(dir, "once-"), runDir(dir, "twice-")];
    const flag = (json: { editor_config?: Json; editorConfig?: Json }) =>
      (json.editor_config ?? json.editorConfig)!.train_cfg.edit_layer_twice;
    assert.equal(flag(await readJson(join(onceRun, "config.json"))), false);
    assert.equal(flag(await readJson(join(twiceRun, "config.json"))), true);
    assert.equal(flag(await readJson(await findCheckpoint(twiceRun))), true);
    const losses = async (r: string) =>
      (await Deno.readTextFile(join(r, "logs/train.jsonl"))).trim().split("\n")
        .map((l) => JSON.parse(l).parts);
    const [a, b] = [(await losses(onceRun))[0], (await losses(twiceRun))[0]];
    // (locality may draw no expert at step 1: KL 0 either way)
    for (const part of ["rel", "gen_text", "gen_image"]) assert.notEqual(a[part], b[part], part);
    assert.equal(a.soft, b.soft, "same seed, same data: the routing losses agree at step 1");
    // resuming without the flag keeps the released code's training
    const resumed = await run(runTrain, dir, [
      ...TRAIN,
      "-eps",
      "2",
      "-tnp",
      "again",
      "-lkpt",
      twiceRun,
    ]);
    assert.equal(resumed.code, 0, resumed.errors.join("\n"));
    assert.equal(flag(await readJson(await findCheckpoint(runDir(dir, "again-")))), true);
  });
});

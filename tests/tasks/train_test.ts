import assert from "node:assert/strict";
import { join } from "node:path";
import { latestCheckpoint, loadCheckpoint, saveCheckpoint } from "../../src/train/checkpoint.ts";
import { Adam } from "../../src/train/adam.ts";
import { Rng } from "../../src/tensor/rng.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { runTrain } from "../../tasks/train.ts";
import { type FakeOptions, fakeRegistry } from "../train/_fake_editor.ts";
import { collect, listFiles, makeWorkspace, withTempDir } from "../train/_workspace.ts";
import { writeSolidPng } from "../data/_helpers.ts";

const FAKE = ["-en", "fake", "-mn", "tiny", "-dna", "EVQA"];

async function train(cwd: string, argv: string[], options: FakeOptions = {}) {
  const out = collect();
  const code = await runTrain([...FAKE, ...argv], {
    editors: fakeRegistry(options),
    cwd,
    tty: false,
    print: out.print,
    printError: out.printError,
  });
  return { code, ...out };
}

/** The run directories under records/, oldest name first. */
async function runDirs(cwd: string, model = "tiny"): Promise<string[]> {
  const dir = join(cwd, "records", "fake", model);
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) if (e.isDirectory) out.push(join(dir, e.name));
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return out.sort();
}

interface Line {
  step: number;
  epoch: number;
  lr: number;
  loss: number;
  ema_loss: number;
  parts: Record<string, number>;
  samples_per_s: number;
}

async function logLines(run: string): Promise<Line[]> {
  const text = await Deno.readTextFile(join(run, "logs", "train.jsonl"));
  return text.trimEnd().split("\n").map((l) => JSON.parse(l));
}

/** What must repeat exactly after a resume. */
const losses = (lines: Line[]) =>
  lines.map(({ step, epoch, lr, loss, ema_loss, parts }) => ({
    step,
    epoch,
    lr,
    loss,
    ema_loss,
    parts,
  }));

Deno.test("train writes config.json, checkpoints every -sci steps, JSONL logs and the SVG plot", async () => {
  await withTempDir(async (dir) => {
    await makeWorkspace(dir);
    const r = await train(dir, [
      "-bs",
      "4",
      "-eps",
      "2",
      "-sci",
      "2",
      "-rs",
      "5",
      "-tnp",
      "T",
      "-dbs",
      "2",
    ]);
    assert.equal(r.code, 0, r.errors.join("\n"));
    const [run] = await runDirs(dir);
    assert.match(run, /records\/fake\/tiny\/T-\d{4}\.\d\d\.\d\d-\d\d\.\d\d\.\d\d$/);
    const files = await listFiles(run);
    assert.deepEqual(
      files.filter((f) => f.startsWith("checkpoints/")).map((f) =>
        f.replace(/ema_loss-\d+\.\d{4}/, "L")
      ),
      [
        "checkpoints/epoch-1-i-2-L.json",
        "checkpoints/epoch-1-i-2-L.safetensors",
        "checkpoints/epoch-2-i-4-L.json",
        "checkpoints/epoch-2-i-4-L.safetensors",
        "checkpoints/epoch-2-i-6-L.json",
        "checkpoints/epoch-2-i-6-L.safetensors",
      ],
    );
    assert.ok(files.includes("logs/losses.svg") && files.includes("config.json"));
    const config = JSON.parse(await Deno.readTextFile(join(run, "config.json")));
    assert.equal(config.seed, 5);
    assert.equal(config.batch_size, 4);
    assert.equal(config.total_steps, 6);
    assert.equal(config.data_name, "EVQA");
    assert.deepEqual(config.editor_config, { fake: true, lr: 0.05 });
    const lines = await logLines(run);
    assert.deepEqual(lines.map((l) => [l.step, l.epoch]), [[1, 1], [2, 1], [3, 1], [4, 2], [5, 2], [
      6,
      2,
    ]]);
    let ema = 1;
    for (const l of lines) {
      assert.deepEqual(Object.keys(l.parts), ["rel", "gen", "loc"]);
      assert.ok(Math.abs(l.loss - (l.parts.rel + l.parts.gen + l.parts.loc)) < 1e-12);
      ema = 0.1 * l.loss + 0.9 * ema;
      assert.ok(Math.abs(l.ema_loss - ema) < 1e-12, "EMA from 1 with -ea 0.1");
      assert.ok(l.samples_per_s > 0);
      assert.equal(l.lr, 0.05);
    }
    const svg = await Deno.readTextFile(join(run, "logs", "losses.svg"));
    const panels = [...svg.matchAll(/<tspan font-weight="bold">([^<]*)<\/tspan>/g)].map((m) =>
      m[1]
    );
    assert.deepEqual(panels, ["loss", "rel", "gen", "loc"], "a panel per logged loss");
    assert.equal(svg.match(/<polyline /g)?.length, 8, "values and moving average per panel");
    const ckpt = await loadCheckpoint(
      (await latestCheckpoint(join(run, "checkpoints")))!.jsonPath,
      {
        model: "fake/tiny",
      },
    );
    assert.equal(ckpt.step, 6);
    assert.equal(ckpt.adam.step, 6);
    assert.equal(ckpt.emaLoss, lines[5].ema_loss);
  });
});

Deno.test("train -lkpt resumes exactly: the losses after the checkpoint equal an uninterrupted run's", async () => {
  await withTempDir(async (dir) => {
    await makeWorkspace(dir);
    const args = ["-bs", "4", "-eps", "3", "-rs", "11", "-sci", "4", "-lpi", "1"];
    const full = await train(dir, [...args, "-tnp", "full"]);
    assert.equal(full.code, 0, full.errors.join("\n"));
    const [fullRun] = await runDirs(dir);
    const all = await logLines(fullRun);
    assert.equal(all.length, 9);
    // resume from step 4 (mid-epoch 2) without -rs: the seed comes from the run's config
    const ckpt = join(
      fullRun,
      "checkpoints",
      (await listFiles(join(fullRun, "checkpoints")))
        .find((f) => f.startsWith("epoch-2-i-4-") && f.endsWith(".json"))!,
    );
    const resumed = await train(dir, [
      "-bs",
      "4",
      "-eps",
      "3",
      "-sci",
      "4",
      "-lkpt",
      ckpt,
      "-tnp",
      "resumed",
    ]);
    assert.equal(resumed.code, 0, resumed.errors.join("\n"));
    const resumedRun = (await runDirs(dir)).find((d) => d.includes("/resumed-"))!;
    const after = await logLines(resumedRun);
    assert.deepEqual(losses(after), losses(all.slice(4)), "steps 5..9 repeat exactly");
    const config = JSON.parse(await Deno.readTextFile(join(resumedRun, "config.json")));
    assert.equal(config.seed, 11);
    assert.equal(config.resumed_step, 4);
    assert.equal(config.load_ckpt, ckpt);
    // a different data order (another seed) would have given other losses
    const other = await train(dir, [
      "-bs",
      "4",
      "-eps",
      "3",
      "-rs",
      "12",
      "-sci",
      "100",
      "-tnp",
      "other",
    ]);
    assert.equal(other.code, 0);
    const otherLines = await logLines((await runDirs(dir)).find((d) => d.includes("/other-"))!);
    assert.notDeepEqual(losses(otherLines).map((l) => l.loss), losses(all).map((l) => l.loss));
  });
});

Deno.test("train stops at a NaN loss naming the step and the part, after checkpointing the last good state", async () => {
  await withTempDir(async (dir) => {
    await makeWorkspace(dir);
    const r = await train(dir, ["-bs", "4", "-eps", "3", "-rs", "1", "-sci", "100"], {
      nanAtStep: 5,
    });
    assert.equal(r.code, 1);
    const message = r.errors.join("\n");
    assert.match(message, /training stopped at step 5 \(epoch 2\): .*part "gen" is NaN/);
    assert.match(message, /saved a checkpoint of the last good state \(step 4\)/);
    const [run] = await runDirs(dir);
    const info = await latestCheckpoint(join(run, "checkpoints"));
    assert.equal(info?.step, 4);
    const ckpt = await loadCheckpoint(info!.jsonPath, { model: "fake/tiny" });
    assert.equal(ckpt.adam.step, 4, "the failed step did not update");
    assert.deepEqual((await logLines(run)).map((l) => l.step), [1, 2, 3, 4]);
  });
});

Deno.test("train: bad input is a clear error and writes nothing", async () => {
  await withTempDir(async (dir) => {
    const ws = await makeWorkspace(dir, { records: 6 });
    const trainFile = join(ws.dataRoot, "easy-edit-mm/vqa/vqa_train.json");
    const good = await Deno.readTextFile(trainFile);
    const cases: [string, () => Promise<void>, string[], RegExp, number][] = [
      [
        "unknown data name",
        async () => {},
        ["-dna", "OKVQA"],
        /unknown data name "OKVQA" \(valid: EVQA, EIC, VLKEB\)/,
        2,
      ],
      ["unknown model name", async () => {}, ["-mn", "gpt9"], /unknown model name "gpt9"/, 1],
      [
        "unknown editor",
        async () => {},
        ["-en", "rome"],
        /unknown editor "rome" \(valid: fake\)/,
        1,
      ],
      [
        "missing data file",
        () => Deno.remove(trainFile),
        [],
        /data file .*vqa_train\.json: does not exist \(EVQA train\)/,
        1,
      ],
      [
        "malformed record",
        async () => {
          const records = JSON.parse(good);
          delete records[3].alt;
          await Deno.writeTextFile(trainFile, JSON.stringify(records));
        },
        [],
        /vqa_train\.json: record 3: field 'alt' is missing/,
        1,
      ],
      [
        "malformed JSON",
        () => Deno.writeTextFile(trainFile, "[{"),
        [],
        /vqa_train\.json: malformed JSON/,
        1,
      ],
      [
        "missing images",
        () => Deno.remove(join(ws.dataRoot, "easy-edit-mm/images/val2014/img2.png")),
        [],
        /1 of \d+ image files referenced by .* are missing .*val2014\/img2\.png \(record 2, field 'image'\)/,
        1,
      ],
      ["bad -bs", async () => {}, ["-bs", "0"], /-bs\/--batch-size must be an integer >= 1/, 2],
      ["bad device", async () => {}, ["-dvc", "tpu"], /-dvc: unknown device 'tpu'/, 2],
      [
        "missing checkpoint",
        async () => {},
        ["-lkpt", "nowhere.json"],
        /checkpoint .*nowhere\.json does not exist/,
        1,
      ],
    ];
    for (const [what, setup, argv, re, code] of cases) {
      await Deno.writeTextFile(trainFile, good);
      await setup();
      const base = ["-en", "fake", "-mn", "tiny", "-dna", "EVQA", "-bs", "2"];
      const out = collect();
      const got = await runTrain(mergeFlags(base, argv), {
        editors: fakeRegistry(),
        cwd: dir,
        tty: false,
        ...out,
      });
      assert.equal(got, code, `${what}: ${out.errors.join("\n")}`);
      assert.match(out.errors.join("\n"), re, what);
      assert.deepEqual(await listFiles(join(dir, "records")), [], `${what}: nothing written`);
      if (what === "missing images") {
        await writeSolidPng(join(ws.dataRoot, "easy-edit-mm/images/val2014/img2.png"), [1, 2, 3]);
      }
    }
  });
});

/** `base` with the flags of `extra` replacing those of the same name. */
function mergeFlags(base: string[], extra: string[]): string[] {
  const out = [...base];
  for (let i = 0; i < extra.length; i += 2) {
    const k = out.indexOf(extra[i]);
    if (k >= 0) out.splice(k, 2, extra[i], extra[i + 1]);
    else out.push(extra[i], extra[i + 1]);
  }
  return out;
}

Deno.test("train -lkpt refuses a checkpoint of another model, writing nothing", async () => {
  await withTempDir(async (dir) => {
    await makeWorkspace(dir);
    const w = new Tensor("f32", [6], new Float32Array(6));
    const adam = new Adam({ w });
    const ckpts = join(dir, "elsewhere", "checkpoints");
    await saveCheckpoint(ckpts, "epoch-1-i-2-ema_loss-1.0000", {
      model: "fake/blip2-opt-2.7b",
      weights: { w },
      adam: adam.state(),
      step: 2,
      epoch: 1,
      emaLoss: 1,
      rng: new Rng(0).state(),
    });
    const r = await train(dir, ["-bs", "4", "-lkpt", ckpts]);
    assert.equal(r.code, 1);
    assert.match(
      r.errors.join("\n"),
      /checkpoint is for model "fake\/blip2-opt-2\.7b", expected "fake\/tiny"/,
    );
    assert.deepEqual(await listFiles(join(dir, "records")), []);
  });
});

Deno.test("train -lkpt: a malformed config.json of the resumed run is an error naming it, writing nothing", async () => {
  await withTempDir(async (dir) => {
    await makeWorkspace(dir);
    const w = new Tensor("f32", [6], new Float32Array(6));
    await saveCheckpoint(join(dir, "run", "checkpoints"), "epoch-1-i-2-ema_loss-1.0000", {
      model: "fake/tiny",
      weights: { w },
      adam: new Adam({ w }).state(),
      step: 2,
      epoch: 1,
      emaLoss: 1,
      rng: new Rng(0).state(),
    });
    const config = join(dir, "run", "config.json");
    for (
      const [text, error] of [['{"seed": 3,', "malformed JSON"], ["[3]", "must be a JSON object"]]
    ) {
      await Deno.writeTextFile(config, text);
      const r = await train(dir, ["-bs", "4", "-lkpt", join(dir, "run")]);
      assert.equal(r.code, 1);
      assert.ok(r.errors.join("\n").includes(`${config}: ${error}`), r.errors.join("\n"));
      assert.deepEqual(await listFiles(join(dir, "records")), []);
    }
  });
});

Deno.test("train --help prints every flag; usage errors exit 2", async () => {
  const out = collect();
  assert.equal(await runTrain(["--help"], { ...out }), 0);
  for (
    const f of [
      "-en",
      "-mn",
      "-dna",
      "-bs",
      "-dvc",
      "-edvc",
      "-dn",
      "-lkpt",
      "-eps",
      "-tnp",
      "-sci",
      "-lpi",
      "-ea",
      "-rs",
      "-dbs",
      "--model-dir",
      "--data-root",
      "--records",
    ]
  ) {
    assert.ok(out.lines[0].includes(`${f}`), f);
  }
  const bad = collect();
  assert.equal(await runTrain(["-en", "fake"], { ...bad }), 2);
  assert.match(bad.errors[0], /-mn\/--model-name\/--edit-model-name is required/);
});

Deno.test("train killed with SIGKILL mid-run resumes from its last checkpoint; no file is corrupt", async () => {
  await withTempDir(async (dir) => {
    await makeWorkspace(dir, { records: 16 });
    const args = [
      "-en",
      "fake",
      "-mn",
      "tiny",
      "-dna",
      "EVQA",
      "-bs",
      "2",
      "-eps",
      "4",
      "-rs",
      "3",
      "-sci",
      "3",
      "-tnp",
      "killed",
    ];
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL("../train/_train_child.ts", import.meta.url).pathname, ...args],
      cwd: dir,
      stdout: "null",
      stderr: "piped",
    }).spawn();
    // wait until a few checkpoints are there, then kill it mid-step
    let ckptDir = "";
    for (let i = 0; i < 600; i++) {
      await new Promise((r) => setTimeout(r, 50));
      const [run] = await runDirs(dir);
      if (run === undefined) continue;
      ckptDir = join(run, "checkpoints");
      const n = (await listFiles(ckptDir)).filter((f) => f.endsWith(".json")).length;
      if (n >= 3) break;
    }
    child.kill("SIGKILL");
    const status = await child.status;
    await child.stderr.cancel();
    assert.equal(status.signal, "SIGKILL");
    const [run] = await runDirs(dir);
    // every checkpoint on disk loads (hash checked); the log has whole lines only
    const files = await listFiles(ckptDir);
    for (const f of files.filter((f) => f.endsWith(".json") && !f.startsWith("."))) {
      await loadCheckpoint(join(ckptDir, f), { model: "fake/tiny" });
    }
    const killedLines = await logLines(run);
    const last = await latestCheckpoint(ckptDir);
    assert.ok(last !== undefined && last.step >= 9 && last.step < 32, `step ${last?.step}`);
    assert.ok(killedLines.length >= last.step, "logged up to the checkpoint");

    const resumed = await train(dir, [
      "-bs",
      "2",
      "-eps",
      "4",
      "-sci",
      "100",
      "-lkpt",
      run,
      "-tnp",
      "resumed",
    ]);
    assert.equal(resumed.code, 0, resumed.errors.join("\n"));
    const resumedLines = await logLines((await runDirs(dir)).find((d) => d.includes("/resumed-"))!);
    assert.equal(resumedLines[0].step, last.step + 1);
    assert.equal(resumedLines.at(-1)!.step, 32);
    // the steps both runs did agree exactly
    const overlap = killedLines.filter((l) => l.step > last.step);
    assert.deepEqual(losses(resumedLines.slice(0, overlap.length)), losses(overlap));
    // and the whole resumed run matches an uninterrupted one
    const full = await train(dir, [
      "-bs",
      "2",
      "-eps",
      "4",
      "-rs",
      "3",
      "-sci",
      "100",
      "-tnp",
      "full",
    ]);
    assert.equal(full.code, 0);
    const fullLines = await logLines((await runDirs(dir)).find((d) => d.includes("/full-"))!);
    assert.deepEqual(losses(resumedLines), losses(fullLines.slice(last.step)));
  });
});

Deno.test("e2e on a make-tiny BLIP-2 with the real LiveEdit: train writes checkpoints and logs, -lkpt resumes with identical losses", async () => {
  await withTempDir(async (dir) => {
    await makeWorkspace(dir, { records: 8 });
    const run = async (argv: string[]) => {
      const out = collect();
      const code = await runTrain(
        [
          "-en",
          "liveedit",
          "-mn",
          "tiny",
          "-dna",
          "EVQA",
          "-bs",
          "4",
          "-eps",
          "2",
          "--editor-config",
          "tiny",
          // the step on cpu:0's worker, the frozen backbone's batches prepared on cpu:1's
          "-dvc",
          "cpu:0",
          "-edvc",
          "cpu:1",
          ...argv,
        ],
        { cwd: dir, tty: false, ...out },
      );
      assert.equal(code, 0, out.errors.join("\n"));
    };
    const dirs = () =>
      [...Deno.readDirSync(join(dir, "records/liveedit/tiny"))].map((e) =>
        join(dir, "records/liveedit/tiny", e.name)
      );
    await run(["-rs", "4", "-sci", "2", "-tnp", "full"]);
    const full = dirs().find((d) => d.includes("/full-"))!;
    const files = await listFiles(join(full, "checkpoints"));
    assert.equal(files.filter((f) => f.endsWith(".json")).length, 2, files.join());
    const all = await logLines(full);
    assert.deepEqual(all.map((l) => l.step), [1, 2, 3, 4]);
    for (const l of all) {
      assert.ok(Number.isFinite(l.loss) && l.loss > 0);
      assert.ok(
        ["rel", "gen_text", "gen_image", "loc"].every((p) => p in l.parts),
        Object.keys(l.parts).join(),
      );
    }
    assert.match(await Deno.readTextFile(join(full, "logs/losses.svg")), /<polyline/);
    const ckpt = join(
      full,
      "checkpoints",
      files.find((f) => f.startsWith("epoch-1-i-2-") && f.endsWith(".json"))!,
    );
    await run(["-sci", "100", "-lkpt", ckpt, "-tnp", "resumed"]);
    const resumed = await logLines(dirs().find((d) => d.includes("/resumed-"))!);
    assert.deepEqual(losses(resumed), losses(all.slice(2)), "steps 3 and 4 repeat exactly");
  });
});

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Rng } from "../../src/tensor/rng.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { runTestEdit } from "../../tasks/test_edit.ts";
import { runTrain } from "../../tasks/train.ts";
import { runInfer } from "../../tasks/infer.ts";
import { LIVEEDIT } from "../../src/editors/liveedit/entry.ts";
import { ExpertRepository } from "../../src/editors/liveedit/repository/repository.ts";
import { findCheckpoint } from "../../src/train/records.ts";
import type { LiveEditModel } from "../../src/editors/liveedit/mod.ts";
import { fakeRegistry } from "../train/_fake_editor.ts";
import { loadConfig } from "../../src/editors/liveedit/mod.ts";
import { SHIPPED_CONFIGS } from "../../src/editors/liveedit/config.ts";
import { initParams } from "../../src/editors/liveedit/params.ts";
import {
  decodeFrameHeader,
  decodePayload,
  RECORD_HEADER_BYTES,
} from "../../src/editors/liveedit/repository/format.ts";
import { writeSolidPng } from "../data/_helpers.ts";
import {
  collect,
  fakeCheckpoint,
  listFiles,
  makeWorkspace,
  withTempDir,
  writeCheckpoint,
} from "../train/_workspace.ts";
import { TINY_FILES } from "../../src/models/tiny/layout.ts";

async function testEdit(cwd: string, argv: string[]) {
  const out = collect();
  const code = await runTestEdit(argv, {
    editors: fakeRegistry(),
    cwd,
    tty: false,
    print: out.print,
    printError: out.printError,
  });
  return { code, ...out };
}

/** Every number in the `acc`/`greedy_acc` fields of `value`, deeply. */
function metrics(value: unknown, out: number[] = []): number[] {
  if (Array.isArray(value)) value.forEach((v) => metrics(v, out));
  else if (value !== null && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      if ((k === "acc" || k === "greedy_acc") && typeof v === "number") out.push(v);
      else metrics(v, out);
    }
  }
  return out;
}

/**
 * Checks the three JSON files of a result directory for `n` edits per chunk; `greedy`: greedy
 * decoding was scored (`--greedy`), else no example has `greedy_acc` or `generated`.
 */
async function checkResultDir(
  dir: string,
  n: number,
  chunks: number,
  greedy: boolean,
): Promise<void> {
  const results = JSON.parse(await Deno.readTextFile(join(dir, "results.json")));
  const mean = JSON.parse(await Deno.readTextFile(join(dir, "mean_results.json")));
  const config = JSON.parse(await Deno.readTextFile(join(dir, "config.json")));
  const svg = await Deno.readTextFile(join(dir, "metrics.svg"));
  assert.ok(svg.startsWith("<svg"));
  assert.match(svg, new RegExp(`: ${n} edits? at a time</text>`));
  for (const name of ["Rel", "T-Gen", "M-Gen", "T-Loc", "M-Loc"]) {
    assert.ok(svg.includes(`>${name}<`));
  }
  const rel = mean.total_mean.reliability;
  for (const v of greedy ? [rel.acc, rel.greedy_acc] : [rel.acc]) {
    assert.ok(svg.includes(`>${(100 * v).toFixed(1)}<`), `${v}`);
  }
  assert.equal(svg.includes("greedy accuracy"), greedy);
  assert.equal(config.greedy, greedy);
  const text = JSON.stringify(results);
  assert.equal(text.includes('"greedy_acc"'), greedy);
  assert.equal(text.includes('"generated"'), greedy);
  assert.equal(results.length, chunks);
  for (const chunk of results) {
    assert.equal(chunk.length, n);
    for (const r of chunk) {
      assert.deepEqual(Object.keys(r), ["index", "reliability", "generality", "locality"]);
      assert.deepEqual(Object.keys(r.generality), ["text_rephrase", "image_rephrase"]);
      assert.deepEqual(Object.keys(r.locality), ["text_loc", "image_loc"]);
      assert.equal(typeof r.reliability[0].edit_time, "number");
      assert.equal(typeof r.locality.image_loc[0].predict_before_edit, "string");
    }
  }
  assert.deepEqual(Object.keys(mean), ["total_mean", "split_mean"]);
  assert.equal(mean.total_mean.total_edit_n, n * chunks);
  assert.equal(mean.split_mean.length, chunks);
  for (const s of mean.split_mean) assert.equal(s.sequential_edit_n, n);
  for (
    const group of [
      "reliability",
      "generality.text_rephrase",
      "generality.image_rephrase",
      "locality.text_loc",
      "locality.image_loc",
    ]
  ) {
    const m = group.split(".").reduce((o, k) => o[k], mean.total_mean);
    assert.ok(typeof m.acc === "number", group);
    assert.equal(typeof m.greedy_acc === "number", greedy, group);
  }
  assert.ok(typeof mean.total_mean.reliability.edit_time === "number");
  const all = [...metrics(results), ...metrics(mean)];
  assert.ok(all.length > 0);
  for (const v of all) assert.ok(v >= 0 && v <= 1, `metric ${v} in [0, 1]`);
  assert.equal(config.sequential_edit_n, n);
  assert.equal(config.chunks, chunks);
}

Deno.test("test-edit -sen 1 and -sen 10 write results.json, mean_results.json and config.json in the original layout, and metrics.svg", async () => {
  await withTempDir(async (dir) => {
    await makeWorkspace(dir, { records: 12 });
    const ckpt = await fakeCheckpoint(dir);
    const base = ["-en", "fake", "-mn", "tiny", "-dn", "EVQA", "-ckpt", ckpt, "-enp", "t"];
    const one = await testEdit(dir, [...base, "-sen", "1", "--greedy"]);
    assert.equal(one.code, 0, one.errors.join("\n"));
    const root = join(dir, "eval_results/fake/tiny/EVQA-t");
    await checkResultDir(join(root, "sequential_edit_1"), 1, 12, true);
    assert.ok(one.lines.some((l) => l.includes("greedy acc %")));
    const table = one.lines.find((l) => l.includes("Rel"))!;
    for (const h of ["Rel", "T-Gen", "M-Gen", "T-Loc", "M-Loc", "edit time"]) {
      assert.ok(table.includes(h), h);
    }
    // the fake answers an edited prompt with its target: Rel 100 %, locality untouched at N = 1
    const mean1 = JSON.parse(
      await Deno.readTextFile(join(root, "sequential_edit_1/mean_results.json")),
    );
    assert.equal(mean1.total_mean.reliability.acc, 1);
    assert.equal(mean1.total_mean.locality.text_loc.acc, 1);

    const ten = await testEdit(dir, [...base, "-sen", "10", "-saveckpt"]);
    assert.equal(ten.code, 0, ten.errors.join("\n"));
    await checkResultDir(join(root, "sequential_edit_10"), 10, 1, false);
    assert.ok(!ten.lines.some((l) => l.includes("greedy acc %")), "greedy not scored");
    assert.ok(ten.lines.some((l) => /the last 2 samples do not fill a chunk of 10/.test(l)));
    const mean10 = JSON.parse(
      await Deno.readTextFile(join(root, "sequential_edit_10/mean_results.json")),
    );
    assert.ok(
      mean10.total_mean.locality.text_loc.acc < 1,
      "10 edits in: the fake's locality drifts",
    );
    const state = JSON.parse(
      await Deno.readTextFile(join(root, "sequential_edit_10/edited_states/chunk_0.safetensors")),
    );
    assert.equal(
      Object.keys(state.edits).length,
      10,
      "-saveckpt: the state after the chunk's edits",
    );
    assert.deepEqual(
      (await listFiles(root)).filter((f) => f.includes(".tmp")),
      [],
      "no temporary left",
    );
  });
});

Deno.test("test-edit refuses an existing result directory unless --force, and leaves it unchanged", async () => {
  await withTempDir(async (dir) => {
    await makeWorkspace(dir, { records: 3 });
    const ckpt = await fakeCheckpoint(dir);
    const argv = ["-en", "fake", "-mn", "tiny", "-dn", "EVQA", "-sen", "1", "-ckpt", ckpt];
    assert.equal((await testEdit(dir, argv)).code, 0);
    const resultDir = join(dir, "eval_results/fake/tiny/EVQA/sequential_edit_1");
    const before = await Deno.readTextFile(join(resultDir, "config.json"));
    const again = await testEdit(dir, argv);
    assert.equal(again.code, 1);
    assert.match(
      again.errors[0],
      /sequential_edit_1 exists: it has been evaluated \(pass --force to replace it\)/,
    );
    assert.equal(await Deno.readTextFile(join(resultDir, "config.json")), before);
    const forced = await testEdit(dir, [...argv, "-dsn", "2", "--force"]);
    assert.equal(forced.code, 0, forced.errors.join("\n"));
    assert.equal(JSON.parse(await Deno.readTextFile(join(resultDir, "config.json"))).samples, 2);
    assert.deepEqual(await listFiles(resultDir), [
      "config.json",
      "mean_results.json",
      "metrics.svg",
      "results.json",
    ]);
  });
});

Deno.test("test-edit: bad input is a clear error and writes nothing", async () => {
  await withTempDir(async (dir) => {
    const ws = await makeWorkspace(dir, { records: 4 });
    const ckpt = await fakeCheckpoint(dir);
    const other = await fakeCheckpoint(join(dir, "other"), "fake/blip2-opt-2.7b");
    const evalFile = join(ws.dataRoot, "easy-edit-mm/vqa/vqa_eval.json");
    const good = await Deno.readTextFile(evalFile);
    const base = ["-en", "fake", "-mn", "tiny", "-dn", "EVQA", "-sen", "1", "-ckpt", ckpt];
    const cases: [string, () => Promise<void>, string[], RegExp][] = [
      ["unknown data name", async () => {}, ["-dn", "COCO"], /unknown data name "COCO"/],
      ["unknown model name", async () => {}, ["-mn", "nope"], /unknown model name "nope"/],
      [
        "missing data file",
        () => Deno.remove(evalFile),
        [],
        /vqa_eval\.json: does not exist \(EVQA eval\)/,
      ],
      [
        "malformed record",
        () => Deno.writeTextFile(evalFile, JSON.stringify([{ src: 1 }])),
        [],
        /record 0: field 'src' must be a string/,
      ],
      [
        "missing images",
        () => Deno.remove(join(ws.dataRoot, "easy-edit-mm/images/val2014/loc.png")),
        [],
        /image files referenced by .* are missing/,
      ],
      [
        "checkpoint of another model",
        async () => {},
        ["-ckpt", other],
        /checkpoint is for model "fake\/blip2-opt-2\.7b", expected "fake\/tiny"/,
      ],
      [
        "no checkpoint",
        async () => {},
        ["-ckpt", "None"],
        /needs a trained checkpoint: pass -ckpt/,
      ],
      ["-sen too large", async () => {}, ["-sen", "50"], /-sen 50 is more than the 4 samples/],
      [
        "VLKEB split on EVQA",
        async () => {},
        ["--split", "eval_onehop"],
        /EVQA has no split eval_onehop/,
      ],
    ];
    for (const [what, setup, extra, re] of cases) {
      await Deno.writeTextFile(evalFile, good);
      await setup();
      const argv = [...base];
      for (let i = 0; i < extra.length; i += 2) {
        const k = argv.indexOf(extra[i]);
        if (k >= 0) argv.splice(k, 2, extra[i], extra[i + 1]);
        else argv.push(extra[i], extra[i + 1]);
      }
      const r = await testEdit(dir, argv);
      assert.notEqual(r.code, 0, what);
      assert.match(r.errors.join("\n"), re, what);
      assert.deepEqual(await listFiles(join(dir, "eval_results")), [], `${what}: nothing written`);
      if (what === "missing images") {
        await writeSolidPng(join(ws.dataRoot, "easy-edit-mm/images/val2014/loc.png"), [9, 9, 9]);
      }
    }
  });
});

Deno.test("e2e on a make-tiny BLIP-2 with the real LiveEdit: train, then test-edit -sen 1 and -sen 10, then infer", async () => {
  await withTempDir(async (dir) => {
    await makeWorkspace(dir, { records: 10 });
    const quiet = collect();
    const trained = await runTrain(
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
        "1",
        "-rs",
        "2",
        "--editor-config",
        "tiny",
      ],
      { cwd: dir, tty: false, ...quiet },
    );
    assert.equal(trained, 0, quiet.errors.join("\n"));
    const run = join(
      dir,
      "records/liveedit/tiny",
      [...Deno.readDirSync(join(dir, "records/liveedit/tiny"))][0].name,
    );
    const base = [
      "-en",
      "liveedit",
      "-mn",
      "tiny",
      "-dn",
      "EVQA",
      "-ckpt",
      run,
      "--editor-config",
      "tiny",
    ];
    const one = collect();
    assert.equal(
      await runTestEdit([...base, "-sen", "1", "-dsn", "3", "--greedy"], {
        cwd: dir,
        tty: false,
        ...one,
      }),
      0,
      one.errors.join("\n"),
    );
    await checkResultDir(
      join(dir, "eval_results/liveedit/tiny/EVQA/sequential_edit_1"),
      1,
      3,
      true,
    );
    const ten = collect();
    assert.equal(
      await runTestEdit([...base, "-sen", "10", "-saveckpt"], { cwd: dir, tty: false, ...ten }),
      0,
      ten.errors.join("\n"),
    );
    const tenDir = join(dir, "eval_results/liveedit/tiny/EVQA/sequential_edit_10");
    await checkResultDir(tenDir, 10, 1, false);
    const mean = JSON.parse(await Deno.readTextFile(join(tenDir, "mean_results.json")));
    assert.ok(mean.total_mean.reliability.edit_time > 0, "edits take time");

    // infer from the saved state of the 10 edits
    const inferred = collect();
    const code = await runInfer(
      [
        "-mn",
        "tiny",
        "--editor-config",
        "tiny",
        "--edits",
        join(tenDir, "edited_states/chunk_0.safetensors"),
        "--image",
        "data/easy-edit-mm/images/val2014/img0.png",
        "--prompt",
        "What is shown in picture 0? The answer is:",
        "--max-new-tokens",
        "4",
      ],
      { cwd: dir, tty: false, ...inferred },
    );
    assert.equal(code, 0, inferred.errors.join("\n"));
    assert.equal(inferred.lines.length, 1);
    assert.equal(typeof inferred.lines[0], "string");
    // the state's ten experts are in the model infer opens
    const model = await LIVEEDIT.openModel({
      modelDir: join(dir, "models/tiny-model"),
      modelName: "tiny",
      devices: ["cpu"],
      checkpoint: null,
      checkpointModel: "liveedit/tiny",
      edits: join(tenDir, "edited_states/chunk_0.safetensors"),
      editorConfig: "tiny",
    }) as LiveEditModel;
    try {
      assert.equal(model.size, 10);
    } finally {
      await model.close();
    }
    // ... and the live experts of an expert repository directory, on the -ckpt weights
    const repoDir = join(dir, "repo");
    const dims = { e: 4, m: 32, r: 4, d: 64 }; // configs/tiny.json
    const repo = await ExpertRepository.open(repoDir, { init: { backbone: "tiny", dims } });
    const t = (rows: number, cols: number) =>
      new Tensor("f32", [rows, cols], new Float32Array(rows * cols).fill(0.01));
    for (let k = 0; k < 3; k++) {
      await repo.append({
        request: { prompt: `p${k}`, target: "t" },
        eqr: t(4, 32),
        evr: t(4, 32),
        C: t(4, 64),
        R: t(4, 64),
      });
    }
    await repo.undo(2);
    await repo.close();
    const fromRepo = await LIVEEDIT.openModel({
      modelDir: join(dir, "models/tiny-model"),
      modelName: "tiny",
      devices: ["cpu"],
      checkpoint: await findCheckpoint(run),
      checkpointModel: "liveedit/tiny",
      edits: repoDir,
      editorConfig: "tiny",
    }) as LiveEditModel;
    try {
      assert.equal(fromRepo.size, 2, "the undone expert is left out");
    } finally {
      await fromRepo.close();
    }
  });
});

Deno.test("e2e on a transformers-5-layout make-tiny BLIP-2: train a few steps, then test-edit, with no extra file", async () => {
  await withTempDir(async (dir) => {
    const ws = await makeWorkspace(dir, { records: 4, layout: "v5" });
    const quiet = collect();
    const trained = await runTrain(
      ["-en", "liveedit", "-mn", "tiny", "-dna", "EVQA", "-bs", "2", "-eps", "1"].concat(
        ["-rs", "2", "--editor-config", "tiny"],
      ),
      { cwd: dir, tty: false, ...quiet },
    );
    assert.equal(trained, 0, quiet.errors.join("\n"));
    const runs = join(dir, "records/liveedit/tiny");
    const run = join(runs, [...Deno.readDirSync(runs)][0].name);
    const lines = (await Deno.readTextFile(join(run, "logs/train.jsonl"))).trim().split("\n");
    assert.deepEqual(lines.map((l) => JSON.parse(l).step), [1, 2]);
    const out = collect();
    const code = await runTestEdit(
      ["-en", "liveedit", "-mn", "tiny", "-dn", "EVQA", "-ckpt", run, "--editor-config", "tiny"]
        .concat(["-sen", "1", "-dsn", "2"]),
      { cwd: dir, tty: false, ...out },
    );
    assert.equal(code, 0, out.errors.join("\n"));
    await checkResultDir(
      join(dir, "eval_results/liveedit/tiny/EVQA/sequential_edit_1"),
      1,
      2,
      false,
    );
    assert.deepEqual(await listFiles(ws.modelDir), [...TINY_FILES.v5]);
  });
});

/** The edit records of a repository's `records.log` written so far (a torn tail left out). */
async function loggedEdits(dir: string): Promise<{ id: number; prompt: string }[]> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(join(dir, "records.log"));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
  const out: { id: number; prompt: string }[] = [];
  const dims = { e: 4, m: 32, r: 4, d: 64 }; // configs/tiny.json
  for (let at = 0; at + RECORD_HEADER_BYTES <= bytes.length;) {
    const header = decodeFrameHeader(bytes.subarray(at, at + RECORD_HEADER_BYTES));
    if (typeof header === "string") break;
    const end = at + RECORD_HEADER_BYTES + header.payloadLength;
    if (end > bytes.length) break;
    const { body } = decodePayload(bytes.subarray(at + RECORD_HEADER_BYTES, end), dims, "log");
    if (body.type === "edit") out.push({ id: body.id, prompt: body.request.prompt });
    at = end;
  }
  return out;
}

Deno.test("test-edit --edits-dir: after a SIGKILL mid-run every acknowledged edit is in the repository", async () => {
  await withTempDir(async (dir) => {
    await makeWorkspace(dir, { records: 8 });
    // untrained LiveEdit weights are enough to edit
    const config = await loadConfig("tiny");
    await writeCheckpoint(dir, "liveedit/tiny", initParams(config.dims, new Rng(1)));
    const edits = join(dir, "edits");
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        ...["run", "-A", new URL("../../tasks/test_edit.ts", import.meta.url).pathname],
        ...["-en", "liveedit", "-mn", "tiny", "-dn", "EVQA", "-sen", "8", "-ckpt", "ckpt"],
        ...["--editor-config", "tiny", "--edits-dir", edits],
      ],
      cwd: dir,
      stdout: "null",
      stderr: "piped",
    }).spawn();
    // wait until some edits are acknowledged (the chunk of 8 is then still being edited or
    // scored: its edits are undone only after all 8 are scored), then kill the process
    let seen: { id: number; prompt: string }[] = [];
    for (let i = 0; i < 2400 && seen.length < 3; i++) {
      await new Promise((r) => setTimeout(r, 25));
      seen = await loggedEdits(edits);
    }
    child.kill("SIGKILL");
    const status = await child.status;
    const stderr = new TextDecoder().decode(await new Response(child.stderr).arrayBuffer());
    assert.equal(status.signal, "SIGKILL", stderr);
    assert.ok(seen.length >= 3, `edits acknowledged before the kill: ${seen.length}`);
    const warnings: string[] = [];
    const repo = await ExpertRepository.open(edits, { onWarning: (w) => warnings.push(w) });
    try {
      const live = new Map(repo.list().map((e) => [e.id, e.request.prompt]));
      for (const { id, prompt } of seen) assert.equal(live.get(id), prompt, `edit ${id}`);
      for (const { id } of seen) assert.equal((await repo.get(id)).eqr.shape.join(), "4,32");
      assert.ok(warnings.some((w) => /stale lock/.test(w)), "the killed run's lock was broken");
    } finally {
      await repo.close();
    }
    // the edits are usable: infer opens the repository on the same weights
    const out = collect();
    const code = await runInfer(
      [
        ...["-mn", "tiny", "--editor-config", "tiny", "-ckpt", "ckpt", "--edits", edits],
        ...["--prompt", "What is shown in picture 0? The answer is:", "--max-new-tokens", "2"],
        ...["--image", "data/easy-edit-mm/images/val2014/img0.png"],
      ],
      { cwd: dir, tty: false, ...out },
    );
    assert.equal(code, 0, out.errors.join("\n"));
  });
});

Deno.test("test-edit --edits-dir refuses a directory that is not empty", async () => {
  await withTempDir(async (dir) => {
    await makeWorkspace(dir, { records: 3 });
    const ckpt = await fakeCheckpoint(dir);
    await Deno.mkdir(join(dir, "edits"));
    await Deno.writeTextFile(join(dir, "edits", "x"), "");
    const argv = ["-en", "fake", "-mn", "tiny", "-dn", "EVQA", "-sen", "1", "-ckpt", ckpt];
    const r = await testEdit(dir, [...argv, "--edits-dir", "edits"]);
    assert.equal(r.code, 2);
    assert.match(r.errors[0], /--edits-dir .*edits is not empty/);
    assert.deepEqual(await listFiles(join(dir, "eval_results")), [], "nothing written");
  });
});

Deno.test("test-edit --edits-dir: a model that fails to open leaves the directory as it was, so a retry is not refused", async () => {
  await withTempDir(async (dir) => {
    await makeWorkspace(dir, { records: 2 });
    const config = await loadConfig("tiny");
    await writeCheckpoint(dir, "liveedit/tiny", initParams(config.dims, new Rng(1)));
    // a config whose edit layer the tiny model does not have: opening the model fails
    const misfit = { ...(SHIPPED_CONFIGS.tiny as object), edit_layer_i: 99 };
    await Deno.writeTextFile(join(dir, "misfit.json"), JSON.stringify(misfit));
    await Deno.mkdir(join(dir, "empty"));
    const argv = ["-en", "liveedit", "-mn", "tiny", "-dn", "EVQA", "-sen", "1", "-ckpt", "ckpt"];
    for (const edits of ["missing", "empty", "missing"]) {
      const out = collect();
      const code = await runTestEdit(
        [...argv, "--editor-config", join(dir, "misfit.json"), "--edits-dir", edits],
        { cwd: dir, tty: false, ...out },
      );
      assert.equal(code, 1, out.errors.join("\n"));
      assert.match(out.errors.join("\n"), /edit[ _]layer(_i)? 99 is not a /);
      assert.deepEqual(
        await listFiles(join(dir, edits)),
        [],
        `${edits}: the new repository is removed`,
      );
    }
    assert.equal(existsSync(join(dir, "missing")), false);
    assert.equal(Deno.statSync(join(dir, "empty")).isDirectory, true);
  });
});

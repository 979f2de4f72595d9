import assert from "node:assert/strict";
import { join } from "node:path";
import type { EditorRegistry } from "../../src/editors/api.ts";
import type { EditSample, Example } from "../../src/data/sample.ts";
import { runInfer } from "../../tasks/infer.ts";
import { runTestEdit } from "../../tasks/test_edit.ts";
import { runTrain } from "../../tasks/train.ts";
import { FakeModel, fakeRegistry } from "../train/_fake_editor.ts";
import {
  collect,
  fakeCheckpoint,
  listFiles,
  makeWorkspace,
  withTempDir,
} from "../train/_workspace.ts";

/** The fake editor, counting what it is asked to do. */
function counting() {
  const prepared: (readonly EditSample[])[] = [];
  const edits: Example[] = [];
  const base = fakeRegistry({ onPrepare: (batch) => prepared.push(batch) }).fake;
  const editors: EditorRegistry = {
    fake: {
      ...base,
      openModel: async (setup) => {
        const model = await base.openModel(setup) as FakeModel;
        const edit = model.edit.bind(model);
        model.edit = (request) => {
          edits.push(request);
          return edit(request);
        };
        return model;
      },
    },
  };
  return { editors, prepared, edits };
}

async function train(cwd: string, argv: string[], editors: EditorRegistry) {
  const out = collect();
  const code = await runTrain(
    ["-en", "fake", "-mn", "tiny", "-dna", "EVQA", "-bs", "2", "-eps", "1", "-rs", "1", ...argv],
    { editors, cwd, tty: false, ...out },
  );
  return { code, ...out };
}

/** Rewrites record `i` of the train (and eval) file with `change`. */
async function editRecord(
  dataRoot: string,
  i: number,
  change: Record<string, unknown>,
  split = "train",
) {
  const file = join(dataRoot, `easy-edit-mm/vqa/vqa_${split}.json`);
  const records = JSON.parse(await Deno.readTextFile(file));
  records[i] = { ...records[i], ...change };
  await Deno.writeTextFile(file, JSON.stringify(records));
  return file;
}

const LONG = Array.from({ length: 400 }, (_, i) => `word${i}`).join(" ");

Deno.test("a too-long prompt is rejected before any session runs, naming file, record, field and token counts", async () => {
  await withTempDir(async (dir) => {
    const ws = await makeWorkspace(dir, { records: 6 });
    const file = await editRecord(ws.dataRoot, 4, { loc: LONG });
    const { editors, prepared } = counting();
    const r = await train(dir, [], editors);
    assert.equal(r.code, 1);
    assert.match(
      r.errors.join("\n"),
      new RegExp(
        `${file}: record 4: field 'loc' is too long with its target 'loc_ans': prompt \\d+ \\+ ` +
          "target \\d+ = \\d+ tokens, more than the 256-token context of tiny " +
          "\\(--truncate-prompt cuts prompts\\)",
      ),
    );
    assert.equal(prepared.length, 0, "nothing was prepared");
    assert.deepEqual(await listFiles(join(dir, "records")), [], "no run directory");
  });
});

Deno.test("--truncate-prompt cuts a too-long prompt from the left and says so", async () => {
  await withTempDir(async (dir) => {
    const ws = await makeWorkspace(dir, { records: 6 });
    await editRecord(ws.dataRoot, 4, { loc: LONG });
    const { editors, prepared } = counting();
    const r = await train(dir, ["--truncate-prompt"], editors);
    assert.equal(r.code, 0, r.errors.join("\n"));
    assert.ok(
      r.lines.includes(
        "note: cut 1 prompts of 1 records from the left to fit the context of tiny " +
          "(--truncate-prompt)",
      ),
      r.lines.join("\n"),
    );
    const loc = prepared.flat().find((s) => s.index === 4)!.locality.text_loc.prompt;
    assert.ok(loc.endsWith("word399?") && loc.length < LONG.length, loc.slice(0, 40));
    assert.ok(!loc.startsWith("word0 "), "cut from the left");
  });
});

Deno.test("train --skip-bad-records leaves out bad and too-long records and says which", async () => {
  await withTempDir(async (dir) => {
    const ws = await makeWorkspace(dir, { records: 8 });
    await editRecord(ws.dataRoot, 1, { alt: "" });
    await editRecord(ws.dataRoot, 5, { src: LONG });
    await Deno.writeTextFile(join(ws.dataRoot, "easy-edit-mm/images/val2014/img3.png"), "junk");
    const { editors, prepared } = counting();
    const refused = await train(dir, [], editors);
    assert.equal(refused.code, 1);
    assert.match(refused.errors.join("\n"), /vqa_train\.json: record 1: field 'alt' is empty/);
    const r = await train(dir, ["--skip-bad-records"], editors);
    assert.equal(r.code, 0, r.errors.join("\n"));
    const warnings = r.lines.filter((l) => l.startsWith("warning: skipped"));
    assert.equal(warnings.length, 3, r.lines.join("\n"));
    assert.match(warnings[0], /skipped 1 of 8 records .*record 1: field 'alt' is empty/);
    assert.match(warnings[1], /record 3: field 'image' .*img3\.png\) is not a png/);
    assert.match(warnings[2], /record 5: field 'src' is too long/);
    const seen = new Set(prepared.flat().map((s) => s.index));
    assert.deepEqual([...seen].sort(), [0, 2, 4, 6, 7]);
    const [run] = await listFiles(join(dir, "records")).then((f) =>
      f.filter((p) => p.endsWith("config.json"))
    );
    const config = JSON.parse(await Deno.readTextFile(join(dir, "records", run)));
    assert.equal(config.skipped_records, 3);
    assert.deepEqual(config.skipped_record_indices, [1, 3, 5]);
    assert.equal(config.samples, 5);
  });
});

Deno.test("test-edit: a bad image in record 7 and an empty answer are rejected before the first edit", async () => {
  await withTempDir(async (dir) => {
    const ws = await makeWorkspace(dir, { records: 10 });
    const ckpt = await fakeCheckpoint(dir);
    const img = join(ws.dataRoot, "easy-edit-mm/images/val2014_image_rephrase/reph7.png");
    const good = await Deno.readFile(img);
    await Deno.writeFile(img, good.subarray(0, 20)); // cut inside the header
    const { editors, edits } = counting();
    const run = async (extra: string[] = []) => {
      const out = collect();
      const code = await runTestEdit(
        ["-en", "fake", "-mn", "tiny", "-dn", "EVQA", "-sen", "2", "-ckpt", ckpt, ...extra],
        { editors, cwd: dir, tty: false, ...out },
      );
      return { code, ...out };
    };
    const r = await run();
    assert.equal(r.code, 1);
    assert.match(
      r.errors.join("\n"),
      /vqa_eval\.json: record 7: field 'image_rephrase' \(.*reph7\.png\) cannot read its png header/,
    );
    assert.equal(edits.length, 0, "no edit was made");
    await Deno.writeFile(img, good);
    const file = await editRecord(ws.dataRoot, 2, { m_loc_a: " " }, "eval");
    const empty = await run();
    assert.equal(empty.code, 1);
    assert.ok(
      empty.errors.join("\n").includes(
        `${file}: record 2: field 'm_loc_a' is empty (only white space: " ")`,
      ),
      empty.errors.join("\n"),
    );
    assert.equal(edits.length, 0);
    assert.deepEqual(await listFiles(join(dir, "eval_results")), []);
    const skipped = await run(["--skip-bad-records"]);
    assert.equal(skipped.code, 0, skipped.errors.join("\n"));
    assert.equal(edits.length, 8, "9 records left, 4 chunks of 2");
  });
});

Deno.test("infer: prompt + --max-new-tokens is checked against the context before the model opens", async () => {
  await withTempDir(async (dir) => {
    await makeWorkspace(dir, { records: 1 });
    const edited = new FakeModel("tiny");
    await edited.saveState(join(dir, "state.json"));
    const image = "data/easy-edit-mm/images/val2014/img0.png";
    const infer = async (argv: string[], img = image) => {
      const out = collect();
      const code = await runInfer(
        ["-en", "fake", "-mn", "tiny", "--edits", "state.json", "--image", img, ...argv],
        { editors: fakeRegistry(), cwd: dir, tty: false, ...out },
      );
      return { code, ...out };
    };
    const long = await infer(["--prompt", LONG, "--max-new-tokens", "8"]);
    assert.equal(long.code, 1);
    assert.match(
      long.errors.join("\n"),
      /--prompt is too long: prompt \d+ \+ new tokens 8 \+ image \d+ = \d+ tokens, more than the 256-token context of tiny; lower --max-new-tokens \(--truncate-prompt/,
    );
    const cut = await infer(["--prompt", LONG, "--max-new-tokens", "8", "--truncate-prompt"]);
    assert.equal(cut.code, 0, cut.errors.join("\n"));
    assert.match(cut.lines[0], /^note: cut the first \d+ characters of the prompt/);
    const tooMany = await infer([
      "--prompt",
      "Hi?",
      "--max-new-tokens",
      "300",
      "--truncate-prompt",
    ]);
    assert.equal(tooMany.code, 1);
    assert.match(tooMany.errors.join("\n"), /new tokens 300/);
    // an SVG named .png is refused before the model opens
    await Deno.writeTextFile(join(dir, "x.png"), '<svg width="99999" height="99999"/>');
    const svg = await infer(["--prompt", "Hi?"], "x.png");
    assert.equal(svg.code, 1);
    assert.match(svg.errors.join("\n"), /image .*x\.png: is an image of type svg/);
  });
});

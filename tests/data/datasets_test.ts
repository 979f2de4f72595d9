import assert from "node:assert/strict";
import { join } from "node:path";
import {
  DATA_NAMES,
  type DataName,
  DATASETS,
  loadDataset,
  type Split,
} from "../../src/data/datasets.ts";
import type { EditSample } from "../../src/data/sample.ts";
import {
  EXCERPT_DATA_ROOT,
  EXCERPT_RECORDS,
  FULL_DATA_ROOT,
  hasFullData,
  rawRecord,
  withTempDir,
  writeTinyEvqa,
} from "./_helpers.ts";

const real = { dataRoot: EXCERPT_DATA_ROOT, checkImages: false } as const;

type Raw = Record<string, unknown>;

async function rawRecords(root: string, rel: string): Promise<Raw[]> {
  return JSON.parse(await Deno.readTextFile(join(root, rel)));
}

/**
 * The sample spec §5 says `r` becomes, built here independently of the loader: `qa` is whether
 * `src`/`rephrase` get " The answer is:" (E-VQA only).
 */
function expected(r: Raw, index: number, root: string, qa: boolean): EditSample {
  const s = (k: string) => r[k] as string;
  const edit = (p: string) => qa ? `${p} The answer is:` : p;
  const img = `${root}/${s("image")}`;
  const sample: EditSample = {
    index,
    request: { image: img, prompt: edit(s("src")), target: s("alt") },
    generality: {
      text_rephrase: { image: img, prompt: edit(s("rephrase")), target: s("alt") },
      image_rephrase: {
        image: `${root}/${s("image_rephrase")}`,
        prompt: edit(s("src")),
        target: s("alt"),
      },
    },
    locality: {
      text_loc: { image: null, prompt: `${s("loc")}?`, target: s("loc_ans") },
      image_loc: {
        image: `${root}/${s("m_loc")}`,
        prompt: `${s("m_loc_q")} The answer is:`,
        target: s("m_loc_a"),
      },
    },
  };
  if (r.port_new === undefined) return sample;
  const ports = (r.port_new as Raw[]).map((p) => ({
    image: img,
    prompt: p.port_q as string,
    target: p.port_a as string,
    editQuestion: p.port_edit_q as string,
    editAnswer: p.port_edit_a as string,
  }));
  return { ...sample, portability: ports };
}

const REAL_SPLITS = [
  { name: "EVQA", split: "train", count: 6345, qa: true },
  { name: "EVQA", split: "eval", count: 2093, qa: true },
  { name: "EIC", split: "train", count: 2849, qa: false },
  { name: "EIC", split: "eval", count: 1000, qa: false },
  { name: "VLKEB", split: "train", count: 5000, qa: false },
  { name: "VLKEB", split: "eval", count: 3174, qa: false },
  { name: "VLKEB", split: "eval_onehop", count: 1278, qa: false },
] as const;

/** Loads split `name`/`split` under `root` and checks every record against spec §5. */
async function checkSplit(
  root: string,
  { name, split, count, qa }: { name: DataName; split: Split; count: number; qa: boolean },
): Promise<void> {
  const data = await loadDataset(name, split, { dataRoot: root, checkImages: false });
  const layout = DATASETS[name];
  assert.equal(data.file, join(root, layout.files[split]!));
  assert.equal(data.imageRoot, join(root, layout.imageDir));
  assert.equal(data.samples.length, count);
  assert.equal(data.skipped, 0);
  assert.deepEqual(data.warnings, []);
  const raws = await rawRecords(root, layout.files[split]!);
  assert.equal(raws.length, count);
  raws.forEach((r, i) => assert.deepEqual(data.samples[i], expected(r, i, data.imageRoot, qa)));
}

for (const s of REAL_SPLITS) {
  Deno.test(`excerpt of real ${s.name} ${s.split}: every record as spec §5 builds it`, () =>
    checkSplit(EXCERPT_DATA_ROOT, { ...s, count: EXCERPT_RECORDS }));
  const file = DATASETS[s.name].files[s.split]!;
  Deno.test({
    name:
      `complete ${s.name} ${s.split} in data/: ${s.count} records, every one as spec §5 builds it`,
    ignore: !hasFullData(file),
    fn: async () => {
      await checkSplit(FULL_DATA_ROOT, s);
      const excerpt = await rawRecords(EXCERPT_DATA_ROOT, file);
      assert.deepEqual(excerpt, (await rawRecords(FULL_DATA_ROOT, file)).slice(0, excerpt.length));
    },
  });
}

Deno.test("real first records (excerpts): exact prompts, targets and image paths", async () => {
  const first = async (name: string, split: string) =>
    (await loadDataset(name, split, { ...real, limit: 1 })).samples[0];
  const coco = join(EXCERPT_DATA_ROOT, "easy-edit-mm/images");
  const mmkb = join(EXCERPT_DATA_ROOT, "VLKEB/mmkb_images");

  const vqa = await first("EVQA", "train");
  assert.deepEqual(vqa.request, {
    image: `${coco}/val2014/COCO_val2014_000000262197.jpg`,
    prompt: "How many skyscrapers are there? The answer is:",
    target: "2",
  });
  assert.equal(
    vqa.generality.text_rephrase.prompt,
    "What is the number of high-rise buildings in the city? The answer is:",
  );
  assert.equal(vqa.generality.text_rephrase.image, vqa.request.image);
  assert.deepEqual(vqa.generality.image_rephrase, {
    image: `${coco}/val2014_image_rephrase/262197000_COCO_val2014_000000262197.png`,
    prompt: "How many skyscrapers are there? The answer is:",
    target: "2",
  });
  assert.deepEqual(vqa.locality.text_loc, {
    image: null,
    prompt:
      "nq question: mexican leader who was supported by the united states during mexican civil war?",
    target: "Benito Juárez",
  });
  assert.deepEqual(vqa.locality.image_loc, {
    image: `${coco}/val2014/COCO_val2014_000000297147.jpg`,
    prompt: "What sport can you use this for? The answer is:",
    target: "motocross",
  });
  assert.equal(vqa.portability, undefined);

  const vqaEval = await first("EVQA", "eval");
  assert.equal(vqaEval.request.prompt, "How many tennis balls are in the picture? The answer is:");
  assert.equal(
    vqaEval.generality.text_rephrase.prompt,
    "What is the number of tennis balls depicted in the image? The answer is:",
  );
  assert.equal(
    vqaEval.locality.text_loc.prompt,
    "nq question: what purpose did seasonal monsoon winds have on trade?",
  );

  const cap = await first("EIC", "train");
  assert.deepEqual(cap.request, {
    image: `${coco}/val2014/COCO_val2014_000000386164.jpg`,
    prompt: "a photo of",
    target: "A selection of wooden kitchen tools on a counter.",
  });
  assert.equal(
    cap.generality.text_rephrase.prompt,
    "provide a brief overview of the image content,",
  );
  assert.equal(cap.generality.image_rephrase.prompt, "a photo of");
  assert.equal(
    cap.generality.image_rephrase.image,
    `${coco}/val2014_image_rephrase/COCO_val2014_000000386164.png`,
  );
  assert.equal(
    cap.locality.text_loc.prompt,
    "nq question: mexican leader who was supported by the united states during mexican civil war?",
  );
  assert.equal(cap.locality.image_loc.prompt, "What sport can you use this for? The answer is:");

  const capEval = await first("EIC", "eval");
  assert.equal(capEval.request.prompt, "a photo of");
  assert.equal(capEval.generality.text_rephrase.prompt, "a photograph of");
  assert.equal(
    capEval.request.target,
    "Employees working at a cafe that has donuts on the counter.",
  );

  const kb = await first("VLKEB", "train");
  assert.deepEqual(kb.request, {
    image: `${mmkb}/m.010016/google_19.jpg`,
    prompt: "What is the name of the city depicted in the image?",
    target: "Albany, New York",
  });
  assert.equal(
    kb.generality.text_rephrase.prompt,
    "Which capital city of New York is seen in the picture?",
  );
  assert.equal(kb.generality.image_rephrase.image, `${mmkb}/m.010016/google_11.jpg`);
  assert.equal(
    kb.locality.text_loc.prompt,
    "mexican leader who was supported by the united states during mexican civil war?",
  );
  assert.deepEqual(kb.locality.image_loc, {
    image: `${mmkb}/m.0mrf1/google_21.jpg`,
    prompt: "What county in Texas is shown in the image? The answer is:",
    target: "Hidalgo County",
  });

  const kbEval = await first("VLKEB", "eval");
  assert.equal(kbEval.request.prompt, "What city in Illinois is depicted in the image?");
  assert.equal(kbEval.locality.text_loc.prompt, "when did prison break season 4 come out?");
  assert.equal(
    kbEval.locality.image_loc.prompt,
    "What county in Wisconsin is shown in the image? The answer is:",
  );

  const hop = await first("VLKEB", "eval_onehop");
  assert.equal(hop.request.prompt, "What city is featured in the image?");
  assert.equal(hop.request.target, "Fort Smith, Arkansas");
  assert.deepEqual(hop.portability, [{
    image: `${mmkb}/m.010bxh/bing_0.jpg`,
    prompt: "What is the time zone of the location shown in the picture?",
    target: "Central Time Zone",
    editQuestion: "What timezone does Fort Smith, Arkansas follow?",
    editAnswer: "Central Time Zone",
  }]);
});

Deno.test("real excerpts with the image check on: the absent image root is named", async () => {
  await assert.rejects(
    loadDataset("EVQA", "eval", { dataRoot: EXCERPT_DATA_ROOT }),
    (e: Error) =>
      e.message.includes(`image root ${join(EXCERPT_DATA_ROOT, "easy-edit-mm/images")}`) &&
      e.message.includes("does not exist"),
  );
});

Deno.test("limit keeps the first N records; bad limits are rejected", async () => {
  const all = await loadDataset("VLKEB", "eval", real);
  const some = await loadDataset("VLKEB", "eval", { ...real, limit: 7 });
  assert.deepEqual(some.samples, all.samples.slice(0, 7));
  const more = await loadDataset("EIC", "eval", { ...real, limit: 5000 });
  assert.equal(more.samples.length, EXCERPT_RECORDS);
  for (const limit of [0, -1, 2.5]) {
    await assert.rejects(
      loadDataset("EIC", "eval", { ...real, limit }),
      new RegExp(`data limit must be an integer >= 1, got ${limit}`),
    );
  }
});

Deno.test("unknown data name and split list the valid ones", async () => {
  await assert.rejects(
    loadDataset("VQA", "train", real),
    /unknown data name "VQA" \(valid: EVQA, EIC, VLKEB\)/,
  );
  assert.deepEqual([...DATA_NAMES], ["EVQA", "EIC", "VLKEB"]);
  await assert.rejects(
    loadDataset("EVQA", "eval_onehop", real),
    /data set EVQA has no split "eval_onehop" \(valid: train, eval\)/,
  );
  await assert.rejects(
    loadDataset("VLKEB", "test", real),
    /data set VLKEB has no split "test" \(valid: train, eval, eval_onehop\)/,
  );
});

Deno.test("a missing data file is named", async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, "easy-edit-mm/caption/caption_eval_edit.json");
    await assert.rejects(
      loadDataset("EIC", "eval", { dataRoot: dir }),
      (e: Error) => e.message === `data file ${file}: does not exist (EIC eval)`,
    );
  });
});

Deno.test("malformed JSON and a non-array file are errors naming the file", async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, "VLKEB/train.json");
    await Deno.mkdir(join(dir, "VLKEB"));
    await Deno.writeTextFile(file, "[{");
    await assert.rejects(
      loadDataset("VLKEB", "train", { dataRoot: dir }),
      (e: Error) => e.message.startsWith(`data file ${file}: malformed JSON`),
    );
    await Deno.writeTextFile(file, '{"src": "x"}');
    await assert.rejects(
      loadDataset("VLKEB", "train", { dataRoot: dir }),
      (e: Error) => e.message === `data file ${file}: must be a JSON array of records`,
    );
  });
});

Deno.test("a record missing a field or with a wrong type names file, index and field", async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, "easy-edit-mm/vqa/vqa_train.json");
    const load = () => loadDataset("EVQA", "train", { dataRoot: dir, checkImages: false });
    const { m_loc_q: _, ...noQ } = rawRecord(2);
    await writeTinyEvqa(dir, [rawRecord(0), rawRecord(1), noQ]);
    await assert.rejects(
      load,
      (e: Error) => e.message === `${file}: record 2: field 'm_loc_q' is missing`,
    );
    await writeTinyEvqa(dir, [rawRecord(0), { ...rawRecord(1), alt: 3 }]);
    await assert.rejects(
      load,
      (e: Error) => e.message === `${file}: record 1: field 'alt' must be a string, got number 3`,
    );
    await writeTinyEvqa(dir, [rawRecord(0), ["not", "a record"]]);
    await assert.rejects(
      load,
      (e: Error) => e.message === `${file}: record 1: must be a JSON object, got an array`,
    );
    await writeTinyEvqa(dir, [{ ...rawRecord(0), image: null }]);
    await assert.rejects(
      load,
      (e: Error) => e.message === `${file}: record 0: field 'image' must be a string, got null`,
    );
    // beyond the limit nothing is read, as the original -dn
    await writeTinyEvqa(dir, [rawRecord(0), noQ]);
    const one = await loadDataset("EVQA", "train", { dataRoot: dir, limit: 1, checkImages: false });
    assert.equal(one.samples.length, 1);
  });
});

Deno.test("VLKEB one-hop: port_new is required and its entries are checked", async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, "VLKEB/eval_edit_onehop.json");
    await Deno.mkdir(join(dir, "VLKEB"));
    const opts = { dataRoot: dir, checkImages: false };
    const port = { port_q: "q", port_a: "a", port_edit_q: "eq", port_edit_a: "ea" };
    await Deno.writeTextFile(
      file,
      JSON.stringify([{ ...rawRecord(0), port_new: [port] }, rawRecord(1)]),
    );
    await assert.rejects(
      loadDataset("VLKEB", "eval_onehop", opts),
      (e: Error) => e.message === `${file}: record 1: field 'port_new' is missing`,
    );
    const { port_edit_a: _, ...partial } = port;
    await Deno.writeTextFile(
      file,
      JSON.stringify([{ ...rawRecord(0), port_new: [port, partial] }]),
    );
    await assert.rejects(
      loadDataset("VLKEB", "eval_onehop", opts),
      (e: Error) => e.message === `${file}: record 0: field 'port_new[1].port_edit_a' is missing`,
    );
    await Deno.writeTextFile(file, JSON.stringify([{ ...rawRecord(0), port_new: "x" }]));
    await assert.rejects(
      loadDataset("VLKEB", "eval_onehop", opts),
      (e: Error) =>
        e.message === `${file}: record 0: field 'port_new' must be an array, got string "x"`,
    );
  });
});

Deno.test("image paths may not escape the image root", async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, "easy-edit-mm/vqa/vqa_train.json");
    const load = () => loadDataset("EVQA", "train", { dataRoot: dir, checkImages: false });
    const cases: [string, string, string][] = [
      ["image_rephrase", "../../secret.png", "contains '..'"],
      ["m_loc", "val2014/../../x.png", "contains '..'"],
      ["image", "/etc/passwd", "is an absolute path"],
      ["image", "C:\\x.png", "is an absolute path"],
      ["m_loc", "", "is an empty image path"],
    ];
    for (const [field, path, problem] of cases) {
      await writeTinyEvqa(dir, [rawRecord(0), { ...rawRecord(1), [field]: path }]);
      await assert.rejects(
        load,
        (e: Error) =>
          e.message.startsWith(`${file}: record 1: field '${field}' `) &&
          e.message.includes(problem),
        `${field}=${path}`,
      );
    }
  });
});

Deno.test("a symbolic link out of the image root is an error naming record and field", async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, "easy-edit-mm/vqa/vqa_train.json");
    const images = await writeTinyEvqa(dir, [rawRecord(0), rawRecord(1)], [
      "val2014_image_rephrase/reph1.png",
    ]);
    await Deno.writeTextFile(join(dir, "outside.png"), "x");
    await Deno.symlink(join(dir, "outside.png"), join(images, "val2014_image_rephrase/reph1.png"));
    await assert.rejects(
      loadDataset("EVQA", "train", { dataRoot: dir }),
      (e: Error) =>
        e.message.startsWith(`${file}: record 1: field 'image_rephrase'`) &&
        e.message.includes("leads outside the image root"),
    );
    // a link that stays inside is fine
    await Deno.remove(join(images, "val2014_image_rephrase/reph1.png"));
    await Deno.symlink(
      join(images, "val2014/img1.png"),
      join(images, "val2014_image_rephrase/reph1.png"),
    );
    assert.equal((await loadDataset("EVQA", "train", { dataRoot: dir })).samples.length, 2);
  });
});

Deno.test("missing images: one error with the count and the first paths", async () => {
  await withTempDir(async (dir) => {
    const records = Array.from({ length: 10 }, (_, i) => rawRecord(i));
    const omit = [1, 3, 4, 5, 6, 8, 9].map((i) => `val2014/img${i}.png`)
      .concat(["val2014_image_rephrase/reph3.png"]);
    const images = await writeTinyEvqa(dir, records, omit);
    await assert.rejects(
      loadDataset("EVQA", "train", { dataRoot: dir }),
      (e: Error) => {
        const m = e.message;
        return m.startsWith(`data file ${join(dir, "easy-edit-mm/vqa/vqa_train.json")}: `) &&
          m.includes(`8 of 21 image files referenced by it are missing under ${images}`) &&
          m.includes("affecting 7 of 10 records") &&
          m.includes(`first: ${join(images, "val2014/img1.png")} (record 1, field 'image'), `) &&
          m.includes(`${join(images, "val2014_image_rephrase/reph3.png")} (record 3, field`) &&
          m.includes("(3 more)") && !m.includes("img9.png") &&
          m.includes("set skipMissingImages (--skip-missing-images) or skipBadRecords");
      },
    );
  });
});

Deno.test("skipMissingImages skips those records and reports how many", async () => {
  await withTempDir(async (dir) => {
    const records = Array.from({ length: 6 }, (_, i) => rawRecord(i));
    await writeTinyEvqa(dir, records, ["val2014/img2.png", "val2014_image_rephrase/reph4.png"]);
    const data = await loadDataset("EVQA", "train", { dataRoot: dir, skipMissingImages: true });
    assert.deepEqual(data.samples.map((s) => s.index), [0, 1, 3, 5]);
    assert.equal(data.skipped, 2);
    assert.deepEqual(data.skippedRecords.map((s) => s.index), [2, 4]);
    assert.equal(data.warnings.length, 1);
    assert.match(
      data.warnings[0],
      /^skipped 2 of 6 records of .*vqa_train\.json: record 2: field 'image' \(.*img2\.png\) does not exist; record 4: field 'image_rephrase'/,
    );
    // a shared image missing takes every record with it: an error, not an empty data set
    const fresh = join(dir, "fresh");
    await writeTinyEvqa(fresh, records, ["val2014/loc.png"]);
    await assert.rejects(
      loadDataset("EVQA", "train", { dataRoot: fresh, skipMissingImages: true }),
      /skipped 6 of 6 records.*no record is left/,
    );
    // without the check nothing is looked up
    const unchecked = await loadDataset("EVQA", "train", { dataRoot: fresh, checkImages: false });
    assert.equal(unchecked.samples.length, 6);
  });
});

Deno.test("imageRoot overrides the default image root", async () => {
  await withTempDir(async (dir) => {
    await writeTinyEvqa(dir, [rawRecord(0)]);
    const other = join(dir, "elsewhere");
    await Deno.rename(join(dir, "easy-edit-mm/images"), other);
    await assert.rejects(loadDataset("EVQA", "train", { dataRoot: dir }), /does not exist/);
    const data = await loadDataset("EVQA", "train", { dataRoot: dir, imageRoot: other });
    assert.equal(data.imageRoot, other);
    assert.equal(data.samples[0].request.image, join(other, "val2014/img0.png"));
  });
});

import assert from "node:assert/strict";
import { join } from "node:path";
import sharp from "sharp";
import { loadDataset } from "../../../src/data/datasets.ts";
import { answeredExamples } from "../../../src/data/synthetic/answers.ts";
import { GROUP, syntheticSplit } from "../../../src/data/synthetic/generate.ts";
import {
  ANSWERS,
  QUESTION_KINDS,
  QUESTIONS,
  textFacts,
} from "../../../src/data/synthetic/questions.ts";
import { lookKey } from "../../../src/data/synthetic/scene.ts";
import {
  readSyntheticManifest,
  syntheticManifest,
  writeSynthetic,
} from "../../../src/data/synthetic/write.ts";
import { Rng } from "../../../src/tensor/rng.ts";

const FIELDS = [
  "src",
  "pred",
  "rephrase",
  "alt",
  "image",
  "image_rephrase",
  "loc",
  "loc_ans",
  "m_loc",
  "m_loc_q",
  "m_loc_a",
];

Deno.test("syntheticSplit: E-VQA records whose answers follow from the drawn scenes", () => {
  const { records, images } = syntheticSplit("eval", 100, new Rng(5), 48);
  const spec = new Map(images.map((i) => [i.path, i.spec]));
  const kindOf = (q: string) => QUESTION_KINDS.find((k) => QUESTIONS[k].src.includes(q))!;
  const facts = new Map(textFacts().map((f) => [f.question, f.answer]));
  records.forEach((r, i) => {
    assert.deepEqual(Object.keys(r).sort(), [...FIELDS].sort());
    const kind = QUESTION_KINDS[i % QUESTION_KINDS.length];
    assert.equal(kindOf(r.src), kind, r.src);
    assert.ok(QUESTIONS[kind].rephrase.includes(r.rephrase), r.rephrase);
    const s = spec.get(r.image)!;
    assert.equal(r.pred, s[kind]);
    assert.notEqual(r.alt, r.pred, "the edit is counterfactual");
    assert.ok(ANSWERS[kind].includes(r.alt));
    assert.deepEqual(spec.get(r.image_rephrase), s, "the image rephrase shows the same scene");
    const loc = spec.get(r.m_loc)!;
    assert.equal(r.m_loc_a, loc[kindOf(r.m_loc_q)]);
    assert.equal(facts.get(r.loc), r.loc_ans);
  });
  // per group: edit scenes look different, and no locality scene looks like one of them
  for (let g = 0; g < records.length; g += GROUP) {
    const group = records.slice(g, g + GROUP);
    const edits = new Set(group.map((r) => lookKey(spec.get(r.image)!)));
    assert.equal(edits.size, group.length);
    const locs = new Set(group.map((r) => lookKey(spec.get(r.m_loc)!)));
    assert.equal(locs.size, group.length);
    assert.ok([...locs].every((k) => !edits.has(k)), `group ${g / GROUP}`);
  }
  // the same scene drawn differently
  assert.ok(records.every((_, i) => images[3 * i].svg !== images[3 * i + 1].svg));
});

Deno.test("syntheticSplit: the same seed gives the same split, another seed another", () => {
  const a = syntheticSplit("train", 20, new Rng(1), 32);
  assert.deepEqual(syntheticSplit("train", 20, new Rng(1), 32), a);
  assert.notDeepEqual(syntheticSplit("train", 20, new Rng(2), 32).records, a.records);
  assert.throws(() => syntheticSplit("train", 0, new Rng(1), 32), /needs >= 1 records/);
});

Deno.test("writeSynthetic: a data root that loadDataset reads as E-VQA, images of the size", async () => {
  const dir = await Deno.makeTempDir({ prefix: "liveedit-synthetic-" });
  try {
    const out = join(dir, "data");
    const summary = await writeSynthetic(out, { nTrain: 6, nEval: 4, seed: 3, imageSize: 32 });
    assert.equal(summary.images, 30);
    assert.deepEqual(
      await readSyntheticManifest(out),
      syntheticManifest({
        nTrain: 6,
        nEval: 4,
        seed: 3,
        imageSize: 32,
      }),
    );
    const evalSet = await loadDataset("EVQA", "eval", { dataRoot: out });
    assert.equal(evalSet.samples.length, 4);
    const s = evalSet.samples[0];
    assert.match(s.request.prompt, / The answer is:$/);
    assert.match(s.locality.text_loc.prompt, /^nq question: .*\?$/);
    const meta = await sharp(s.generality.image_rephrase.image!).metadata();
    assert.deepEqual([meta.width, meta.height, meta.channels], [32, 32, 3]);
    assert.equal((await loadDataset("EVQA", "train", { dataRoot: out })).samples.length, 6);
    const answered = await answeredExamples(out, "eval");
    assert.equal(answered.length, 20);
    const records = JSON.parse(
      await Deno.readTextFile(join(out, "easy-edit-mm/vqa/vqa_eval.json")),
    );
    assert.equal(answered[0].target, records[0].pred);
    assert.equal(answered[4].image, null);
    // the same settings write the same bytes; a non-empty directory needs force
    await assert.rejects(writeSynthetic(out, { nTrain: 6, nEval: 4, seed: 3 }), /not empty/);
    const again = join(dir, "again");
    await writeSynthetic(again, { nTrain: 6, nEval: 4, seed: 3, imageSize: 32 });
    for (
      const f of [
        "easy-edit-mm/vqa/vqa_train.json",
        "easy-edit-mm/images/synthetic/eval_loc/00003.png",
      ]
    ) {
      assert.deepEqual(await Deno.readFile(join(again, f)), await Deno.readFile(join(out, f)), f);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("syntheticManifest: options must be positive integers", () => {
  assert.throws(() => syntheticManifest({ nTrain: 0 }), /nTrain must be an integer >= 1/);
  assert.throws(() => syntheticManifest({ seed: -1 }), /seed must be an integer >= 0/);
  assert.equal(syntheticManifest().imageSize, 32);
});

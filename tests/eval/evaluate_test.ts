import assert from "node:assert/strict";
import type { EditingModel, Prediction } from "../../src/editors/api.ts";
import type { EditSample, Example } from "../../src/data/sample.ts";
import { evaluateSequential } from "../../src/eval/evaluate.ts";

function ex(prompt: string, target: string, image: string | null = "img.png"): Example {
  return { image, prompt, target };
}

function sample(i: number, portability = false): EditSample {
  return {
    index: i,
    request: ex(`q${i}`, `new${i}`),
    generality: {
      text_rephrase: ex(`rq${i}`, `new${i}`),
      image_rephrase: ex(`q${i}`, `new${i}`, "reph.png"),
    },
    locality: { text_loc: ex(`loc${i}`, "ab", null), image_loc: ex(`mloc${i}`, "abc") },
    ...(portability
      ? { portability: [{ ...ex(`hop${i}`, `port${i}`), editQuestion: "e", editAnswer: "a" }] }
      : {}),
  };
}

const ids = (t: string) => [...t].map((c) => c.charCodeAt(0));

/**
 * A model that records every call: an edited prompt answers its target; an unedited locality
 * prompt answers its target while fewer than 2 edits are in, and `z...` after.
 */
class SpyModel implements EditingModel {
  readonly editorName = "spy";
  readonly modelName = "spy-model";
  readonly calls: string[] = [];
  edits = new Map<string, string>();

  edit(r: Example): Promise<void> {
    this.calls.push(`edit ${r.prompt}`);
    this.edits.set(r.prompt, r.target);
    return Promise.resolve();
  }
  preload(examples: readonly Example[]): Promise<void> {
    this.calls.push(`preload ${examples.length}`);
    return Promise.resolve();
  }
  restore(): Promise<void> {
    this.calls.push("restore");
    this.edits.clear();
    return Promise.resolve();
  }
  #answer(e: Example, n: number): number[] {
    const edited = this.edits.get(e.prompt);
    if (edited !== undefined) return ids(edited).slice(0, n);
    if (this.edits.size >= 2) return ids("z".repeat(n));
    return ids(e.target).slice(0, n);
  }
  predict(examples: readonly Example[]): Promise<Prediction[]> {
    this.calls.push(
      `predict ${examples.map((e) => e.prompt).join(",")} (${this.edits.size} edits)`,
    );
    return Promise.resolve(
      examples.map((e) => ({ predicted: this.#answer(e, e.target.length), target: ids(e.target) })),
    );
  }
  generate(e: Example, n: number): Promise<number[]> {
    this.calls.push(`generate ${e.prompt}`);
    return Promise.resolve(this.#answer(e, n));
  }
  saveState(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

Deno.test("evaluateSequential: per chunk, pre-edit locality first, then N edits, then scores, then restore", async () => {
  const model = new SpyModel();
  const saved: number[] = [];
  const { chunks, dropped } = await evaluateSequential({
    model,
    samples: [0, 1, 2, 3, 4].map((i) => sample(i)),
    editN: 2,
    greedy: true,
    decode: (x) => String.fromCharCode(...x),
    afterEdits: (c) => {
      saved.push(c);
      assert.equal(model.edits.size, 2, "saved after the chunk's edits");
      return Promise.resolve();
    },
  });
  assert.equal(dropped, 1);
  assert.equal(chunks.length, 2);
  assert.deepEqual(saved, [0, 1]);
  // the chunk's teacher-forced passes in one batch each: its locality before, all after
  const chunk0 = model.calls.slice(0, model.calls.indexOf("restore", 1) + 1);
  assert.deepEqual(chunk0.filter((c) => !c.startsWith("generate")), [
    "restore",
    "preload 10",
    "predict loc0,mloc0,loc1,mloc1 (0 edits)",
    "edit q0",
    "edit q1",
    "predict q0,rq0,q0,loc0,mloc0,q1,rq1,q1,loc1,mloc1 (2 edits)",
    "restore",
  ]);
  assert.equal(chunk0.filter((c) => c.startsWith("generate")).length, 4 + 10, "one per example");
  assert.ok(chunk0.indexOf("generate loc1") < chunk0.indexOf("edit q0"), "pre-edit generation");
  const next = model.calls[chunk0.length + 1];
  assert.equal(next, "predict loc2,mloc2,loc3,mloc3 (0 edits)", "the next chunk starts unedited");

  const r = chunks[0][0];
  assert.equal(r.index, 0);
  assert.equal(r.reliability[0].acc, 1);
  assert.equal(r.reliability[0].predict_after_edit, "new0");
  assert.equal(typeof r.reliability[0].edit_time, "number");
  assert.equal(r.generality.text_rephrase[0].acc, 0, "rq0 not edited: z's");
  assert.equal(r.generality.image_rephrase[0].acc, 1, "same prompt as the request");
  // with 2 edits in, locality answers z's where before it answered the target: 0 agreement
  assert.equal(r.locality.text_loc[0].acc, 0);
  assert.equal(r.locality.text_loc[0].predict_before_edit, "ab");
  assert.equal(r.locality.text_loc[0].predict_after_edit, "zz");
  assert.equal(r.locality.image_loc[0].greedy_acc, 0);
  assert.equal(r.portability, undefined);
});

Deno.test("evaluateSequential: single editing keeps locality and scores portability when present", async () => {
  const model = new SpyModel();
  const { chunks } = await evaluateSequential({
    model,
    samples: [sample(0, true), sample(1, true)],
    editN: 1,
    greedy: true,
    decode: () => "",
  });
  assert.equal(chunks.length, 2);
  for (const [r] of chunks) {
    assert.equal(r.locality.text_loc[0].acc, 1, "one edit in: locality unchanged");
    assert.equal(r.locality.image_loc[0].greedy_acc, 1);
    assert.equal(r.reliability[0].greedy_acc, 1);
    assert.equal(r.portability?.one_hop.length, 1);
    assert.equal(r.portability?.one_hop[0].acc, 1, "the hop prompt is not edited: its target");
  }
});

Deno.test("evaluateSequential: without greedy, no generation and no greedy fields; scoreBatch splits the passes", async () => {
  const model = new SpyModel();
  const { chunks } = await evaluateSequential({
    model,
    samples: [0, 1, 2].map((i) => sample(i)),
    editN: 3,
    scoreBatch: 4,
    decode: (x) => String.fromCharCode(...x),
  });
  assert.ok(!model.calls.some((c) => c.startsWith("generate")));
  assert.deepEqual(model.calls.filter((c) => c.startsWith("predict")), [
    "predict loc0,mloc0,loc1,mloc1 (0 edits)",
    "predict loc2,mloc2 (0 edits)",
    "predict q0,rq0,q0,loc0 (3 edits)",
    "predict mloc0,q1,rq1,q1 (3 edits)",
    "predict loc1,mloc1,q2,rq2 (3 edits)",
    "predict q2,loc2,mloc2 (3 edits)",
  ]);
  const r = chunks[0][1];
  assert.equal(r.reliability[0].acc, 1);
  assert.equal(r.locality.text_loc[0].acc, 0, "3 edits in: z's");
  for (const row of [r.reliability[0], r.locality.image_loc[0]]) {
    assert.equal("greedy_acc" in row, false);
    assert.equal("generated" in row, false);
  }
  await assert.rejects(
    evaluateSequential({ model, samples: [], editN: 1, scoreBatch: 0, decode: () => "" }),
    /scoreBatch must be an integer >= 1, got 0/,
  );
});

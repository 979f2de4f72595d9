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
  assert.deepEqual(model.calls.slice(0, 6), [
    "restore",
    "predict loc0,mloc0 (0 edits)",
    "predict loc1,mloc1 (0 edits)",
    "edit q0",
    "edit q1",
    "predict q0,rq0,q0,loc0,mloc0 (2 edits)",
  ]);
  assert.equal(model.calls[7], "restore");
  assert.equal(model.calls[8], "predict loc2,mloc2 (0 edits)", "the next chunk starts unedited");
  assert.equal(model.calls.filter((c) => c.startsWith("predict loc0")).length, 1, "pre-edit once");

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

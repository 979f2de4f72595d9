import assert from "node:assert/strict";
import {
  chunksOf,
  meanResults,
  meanResultsFile,
  roundFloats,
  type SampleResult,
} from "../../src/eval/results.ts";

function sample(index: number, rel: number, time: number, tloc: number): SampleResult {
  return {
    index,
    reliability: [{ prompt: "p", acc: rel, edit_time: time, predict_after_edit: "x" }],
    generality: { text_rephrase: [{ acc: rel / 2 }], image_rephrase: [{ acc: 1 }] },
    locality: { text_loc: [{ acc: tloc, predict_before_edit: "y" }], image_loc: [{ acc: 0.5 }] },
  };
}

Deno.test("meanResults averages every numeric field per group, as get_mean_results", () => {
  const m = meanResults([sample(0, 1, 0.2, 1), sample(1, 0.5, 0.4, 0), sample(2, 0, 0.3, 0.5)]);
  assert.deepEqual(m.reliability, { acc: 0.5, edit_time: (0.2 + 0.4 + 0.3) / 3 });
  assert.deepEqual(m.generality, { text_rephrase: { acc: 0.25 }, image_rephrase: { acc: 1 } });
  assert.deepEqual(m.locality, { text_loc: { acc: 0.5 }, image_loc: { acc: 0.5 } });
  assert.equal(m.portability, undefined, "no portability group without portability");
  const withPort = meanResults([{
    ...sample(0, 1, 0, 1),
    portability: { one_hop: [{ acc: 0.25 }, { acc: 0.75 }] },
  }]);
  assert.deepEqual(withPort.portability, { one_hop: { acc: 0.5 } });
});

Deno.test("meanResultsFile: total_mean with total_edit_n and split_mean with sequential_edit_n", () => {
  const file = meanResultsFile([[sample(0, 1, 0, 1), sample(1, 0, 0, 1)], [
    sample(2, 1, 0, 0),
    sample(3, 1, 0, 0),
  ]]);
  assert.deepEqual(Object.keys(file), ["total_mean", "split_mean"]);
  assert.equal(file.total_mean.total_edit_n, 4);
  assert.equal(file.total_mean.reliability.acc, 0.75);
  assert.deepEqual(file.split_mean.map((m) => m.sequential_edit_n), [2, 2]);
  assert.deepEqual(file.split_mean.map((m) => m.reliability.acc), [0.5, 1]);
  assert.deepEqual(file.split_mean.map((m) => m.locality.text_loc.acc), [1, 0]);
});

Deno.test("chunksOf leaves out a last incomplete chunk, as the original split_data", () => {
  assert.deepEqual(chunksOf([1, 2, 3, 4, 5], 2), { chunks: [[1, 2], [3, 4]], dropped: 1 });
  assert.deepEqual(chunksOf([1, 2, 3], 1), { chunks: [[1], [2], [3]], dropped: 0 });
  assert.deepEqual(chunksOf([1, 2], 3), { chunks: [], dropped: 2 });
  assert.throws(() => chunksOf([1], 0), /chunk size/);
});

Deno.test("roundFloats rounds non-integers to 4 decimals deeply and keeps the rest", () => {
  assert.deepEqual(roundFloats({ a: 1 / 3, b: [2, 0.123456, "s", null], c: { d: 0.99995 } }), {
    a: 0.3333,
    b: [2, 0.1235, "s", null],
    c: { d: 1 },
  });
});

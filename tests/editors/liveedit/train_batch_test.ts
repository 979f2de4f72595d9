import assert from "node:assert/strict";
import {
  type ExampleGroup,
  sampleExpertMasks,
  samplePairs,
} from "../../../src/editors/liveedit/train_batch.ts";
import { Rng } from "../../../src/tensor/rng.ts";

const GROUPS: ExampleGroup[] = [
  { name: "rel", kind: "rel" },
  { name: "text_rephrase", kind: "gen" },
  { name: "image_rephrase", kind: "gen" },
  { name: "image_loc", kind: "loc" },
];

Deno.test("expert masks: own expert / sample's experts / none, plus a random prefix", () => {
  const rng = new Rng(5);
  const per = [2, 1, 3];
  for (let trial = 0; trial < 20; trial++) {
    const m = sampleExpertMasks(rng, per, [1, 0, 2]);
    const starts = [0, 2, 3];
    per.forEach((count, j) => {
      assert.ok(m.rel[j][starts[j] + [1, 0, 2][j]], "reliability uses its own expert");
      for (let k = starts[j]; k < starts[j] + count; k++) assert.ok(m.gen[j][k]);
      for (const kind of ["rel", "gen", "loc"] as const) {
        const row = m[kind][j];
        assert.equal(row.length, 6);
        // beyond the base set, what is on is a prefix
        const base = (k: number) =>
          kind === "rel"
            ? k === starts[j] + [1, 0, 2][j]
            : kind === "gen"
            ? k >= starts[j] && k < starts[j] + count
            : false;
        const extra = row.map((on, k) => on && !base(k));
        const last = extra.lastIndexOf(true);
        for (let k = 0; k < last; k++) assert.ok(row[k], `${kind}[${j}] prefix has a hole at ${k}`);
      }
    });
  }
  assert.throws(() => sampleExpertMasks(rng, [2], [2]), /sample 0 has 2 requests, relEdit 2/);
});

Deno.test("pairs are drawn inside each sample with the spec's kinds", () => {
  const rng = new Rng(9);
  const kind = (g: string) => GROUPS.find((x) => x.name === g)!.kind;
  const seen = new Set<string>();
  for (let trial = 0; trial < 50; trial++) {
    const { neighbourPairs, prototypePairs } = samplePairs(rng, 4, GROUPS);
    neighbourPairs.forEach(([a, b], j) => {
      assert.equal(a.index, j);
      assert.equal(b.index, j);
      assert.equal(kind(a.group) === "loc", kind(b.group) === "loc", "both edited or both loc");
      seen.add(`n:${a.group}`);
    });
    prototypePairs.forEach(([a, b], j) => {
      assert.equal(a.index + b.index, 2 * j);
      assert.equal(Number(kind(a.group) === "loc") + Number(kind(b.group) === "loc"), 1);
      seen.add(`p0:${kind(a.group) === "loc"}`);
    });
  }
  for (
    const k of [
      "n:rel",
      "n:text_rephrase",
      "n:image_rephrase",
      "n:image_loc",
      "p0:true",
      "p0:false",
    ]
  ) {
    assert.ok(seen.has(k), `${k} is drawn`);
  }
});

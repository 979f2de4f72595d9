import assert from "node:assert/strict";
import { metricsSvg } from "../../src/eval/metrics_svg.ts";
import type { MeanResults } from "../../src/eval/results.ts";

const MEAN: MeanResults = {
  reliability: { acc: 1, greedy_acc: 0.5, edit_time: 0.02 },
  generality: { text_rephrase: { acc: 0.8, greedy_acc: 0.6 }, image_rephrase: { acc: 0.25 } },
  locality: { text_loc: { acc: 1, greedy_acc: 1 }, image_loc: { acc: 0.9, greedy_acc: NaN } },
};

/** The bars of `svg`: `[x, y, height, colour]`. */
function bars(svg: string): [number, number, number, string][] {
  return [
    ...svg.matchAll(/<rect x="([\d.]+)" y="([\d.]+)" width="28" height="([\d.]+)" fill="([^"]+)"/g),
  ]
    .map((m) => [Number(m[1]), Number(m[2]), Number(m[3]), m[4]]);
}

Deno.test("metricsSvg: two bars per metric, heights in proportion to the accuracies", () => {
  const svg = metricsSvg(MEAN, { title: "a <title>" });
  assert.ok(svg.includes("a &lt;title&gt;"));
  const b = bars(svg);
  // Rel 2, T-Gen 2, M-Gen 1 (no greedy), T-Loc 2, M-Loc 1 (greedy NaN is left out)
  assert.equal(b.length, 8);
  const full = b[0][2];
  assert.ok(full > 100);
  const want = [1, 0.5, 0.8, 0.6, 0.25, 1, 1, 0.9];
  b.forEach(([, , h], i) => assert.ok(Math.abs(h - want[i] * full) < 0.1, `${i}: ${h}`));
  assert.deepEqual([...new Set(b.map((x) => x[3]))].length, 2, "one colour per accuracy");
  for (const label of ["100.0", "50.0", "80.0", "60.0", "25.0", "90.0"]) {
    assert.ok(svg.includes(`>${label}<`), label);
  }
  assert.ok(!svg.includes(">Port<") && !svg.includes("NaN"));
  const port = metricsSvg({ ...MEAN, portability: { one_hop: { acc: 0.3, greedy_acc: 0.1 } } });
  assert.ok(port.includes(">Port<"));
  assert.equal(bars(port).length, 10);
});

Deno.test("metricsSvg: without greedy accuracies (not scored), one bar per metric and no greedy legend", () => {
  const svg = metricsSvg({
    reliability: { acc: 1, edit_time: 0.02 },
    generality: { text_rephrase: { acc: 0.8 }, image_rephrase: { acc: 0.25 } },
    locality: { text_loc: { acc: 1 }, image_loc: { acc: 0.9 } },
  });
  assert.equal(bars(svg).length, 5);
  assert.ok(svg.includes("token accuracy"));
  assert.ok(!svg.includes("greedy accuracy"));
});

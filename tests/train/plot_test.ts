import assert from "node:assert/strict";
import { lossPlotSvg, thin } from "../../src/train/plot.ts";

Deno.test("lossPlotSvg draws one polyline and one legend entry per series, escaping names", () => {
  const svg = lossPlotSvg([
    { name: "loss", points: [[1, 3], [2, 2], [3, 1]] },
    { name: "rel<&>", points: [[1, 1], [2, NaN], [3, 0.5]] },
  ], { title: "t" });
  assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.ok(svg.trimEnd().endsWith("</svg>"));
  assert.equal(svg.match(/<polyline /g)?.length, 2);
  assert.ok(svg.includes("rel&lt;&amp;&gt;"));
  assert.ok(!svg.includes("NaN"), "non-finite points are left out");
  const lists = [...svg.matchAll(/<polyline [^>]*points="([^"]*)"/g)].map((m) => m[1].split(" "));
  assert.deepEqual(lists.map((l) => l.length), [3, 2]);
});

Deno.test("lossPlotSvg maps points inside the plot area, larger values higher", () => {
  const svg = lossPlotSvg([{ name: "a", points: [[0, 0], [10, 1]] }], { width: 900, height: 500 });
  const pts = svg.match(/points="([^"]*)"/)![1].split(" ").map((p) => p.split(",").map(Number));
  for (const [x, y] of pts) {
    assert.ok(x >= 64 && x <= 900 - 170, `x ${x}`);
    assert.ok(y >= 36 && y <= 500 - 44, `y ${y}`);
  }
  assert.ok(pts[1][0] > pts[0][0] && pts[1][1] < pts[0][1]);
});

Deno.test("lossPlotSvg works with no points and with a constant series", () => {
  assert.match(lossPlotSvg([]), /<\/svg>/);
  assert.match(lossPlotSvg([{ name: "c", points: [[1, 2], [2, 2]] }]), /<polyline/);
});

Deno.test("thin keeps at most max points: bucket means and the exact last point", () => {
  const pts = Array.from({ length: 10 }, (_, i) => [i, i * 2] as const);
  assert.deepEqual(thin(pts, 20), pts);
  // max 4: buckets of ceil(10/3) = 4 over the first 9 points, then the last point
  assert.deepEqual(thin(pts, 4), [[1.5, 3], [5.5, 11], [8, 16], [9, 18]]);
  assert.ok(thin(Array.from({ length: 10_000 }, (_, i) => [i, 1] as const), 1500).length <= 1500);
});

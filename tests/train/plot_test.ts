import assert from "node:assert/strict";
import { defaultSmoothing, lossPlotSvg, movingAverage, thin } from "../../src/train/plot.ts";

/** The `points` of every polyline of `svg`, as numbers. */
function polylines(svg: string): number[][][] {
  return [...svg.matchAll(/<polyline [^>]*points="([^"]*)"/g)].map((m) =>
    m[1].split(" ").map((p) => p.split(",").map(Number))
  );
}

Deno.test("lossPlotSvg draws a panel per series: the values and their moving average, names escaped", () => {
  const svg = lossPlotSvg([
    { name: "loss", points: [[1, 3], [2, 2], [3, 1]] },
    { name: "rel<&>", points: [[1, 1], [2, NaN], [3, 0.5]] },
  ], { title: "t" });
  assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.ok(svg.trimEnd().endsWith("</svg>"));
  assert.equal(svg.match(/<g class="panel">/g)?.length, 2);
  assert.ok(svg.includes("rel&lt;&amp;&gt;"));
  assert.ok(!svg.includes("NaN"), "non-finite points are left out");
  assert.deepEqual(polylines(svg).map((l) => l.length), [3, 3, 2, 2]);
});

Deno.test("lossPlotSvg: each panel has its own value axis, so a small part fills its panel", () => {
  const steps = Array.from({ length: 50 }, (_, i) => i + 1);
  const svg = lossPlotSvg([
    { name: "loss", points: steps.map((s) => [s, 10 + 5 * Math.cos(s)] as const) },
    { name: "loc", points: steps.map((s) => [s, 0.001 + 0.0005 * Math.cos(s)] as const) },
  ], { width: 800, panelHeight: 200, smoothing: 1 });
  const [big, , small] = polylines(svg);
  const span = (l: number[][]) => Math.max(...l.map((p) => p[1])) - Math.min(...l.map((p) => p[1]));
  assert.ok(span(small) > 0.5 * span(big), `${span(small)} vs ${span(big)}`);
  // the second panel sits right of the first, both below the title
  assert.ok(Math.min(...small.map((p) => p[0])) > 400 && Math.max(...big.map((p) => p[0])) < 400);
  for (const l of [big, small]) assert.ok(l.every(([, y]) => y > 34 && y < 234));
  assert.ok(svg.includes("tick") || svg.includes("e-4"), "small values get exponent labels");
});

Deno.test("movingAverage starts at the first value; the default span is about 5 % of the points", () => {
  const pts = [[1, 4], [2, 2], [3, 8]] as const;
  const ema = movingAverage(pts, 0.5);
  assert.deepEqual(ema, [[1, 4], [2, 3], [3, 5.5]]);
  assert.deepEqual(movingAverage([], 0.3), []);
  assert.throws(() => movingAverage(pts, 0), /smoothing must be in \(0, 1\], got 0/);
  assert.equal(defaultSmoothing(10), 1);
  assert.equal(defaultSmoothing(100), 2 / 6);
  // the smoothed line of a panel starts where its values start
  const svg = lossPlotSvg([{ name: "loss", points: [[1, 9], [2, 1], [3, 1], [4, 1]] }], {
    smoothing: 0.1,
  });
  const [raw, smooth] = polylines(svg);
  assert.deepEqual(smooth[0], raw[0]);
  assert.ok(smooth[3][1] < raw[3][1], "the average of 9, 1, 1, 1 stays above 1 (higher up)");
});

Deno.test("lossPlotSvg maps points inside its panel, larger values higher", () => {
  const svg = lossPlotSvg([{ name: "a", points: [[0, 0], [10, 1]] }], { width: 900 });
  const [pts] = polylines(svg);
  for (const [x, y] of pts) {
    assert.ok(x >= 58 && x <= 900 - 14, `x ${x}`);
    assert.ok(y >= 34 + 22 && y <= 34 + 220 - 26, `y ${y}`);
  }
  assert.ok(pts[1][0] > pts[0][0] && pts[1][1] < pts[0][1]);
});

Deno.test("lossPlotSvg works with no series, no points and a constant series", () => {
  assert.match(lossPlotSvg([]), /<\/svg>/);
  assert.doesNotMatch(lossPlotSvg([{ name: "e", points: [] }]), /<polyline/);
  assert.match(lossPlotSvg([{ name: "c", points: [[1, 2], [2, 2]] }]), /<polyline/);
});

Deno.test("thin keeps at most max points: bucket means and the exact last point", () => {
  const pts = Array.from({ length: 10 }, (_, i) => [i, i * 2] as const);
  assert.deepEqual(thin(pts, 20), pts);
  // max 4: buckets of ceil(10/3) = 4 over the first 9 points, then the last point
  assert.deepEqual(thin(pts, 4), [[1.5, 3], [5.5, 11], [8, 16], [9, 18]]);
  assert.ok(thin(Array.from({ length: 10_000 }, (_, i) => [i, 1] as const), 1500).length <= 1500);
});

import assert from "node:assert/strict";
import { escapeXml, extent, niceTicks, tickLabel } from "../../src/io/svg.ts";

Deno.test("niceTicks: steps of 1, 2 or 5 × 10^k covering the range", () => {
  assert.deepEqual(niceTicks(0, 1, 5), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(3, 97, 4), [0, 50, 100]);
  assert.deepEqual(niceTicks(-0.013, 0.004, 4), [-0.015, -0.01, -0.005, 0, 0.005]);
  const t = niceTicks(0.00051, 0.00149, 4);
  assert.ok(t[0] <= 0.00051 && t.at(-1)! >= 0.00149 && t.length >= 3, t.join());
});

Deno.test("tickLabel, extent and escapeXml", () => {
  assert.deepEqual(
    ["0", "0.25", "1234", "1.2e+5", "5.0e-4"],
    [0, 0.25, 1234, 123456, 0.0005].map(tickLabel),
  );
  assert.deepEqual(extent([]), [0, 1]);
  assert.deepEqual(extent([2, 2]), [1.5, 2.5]);
  assert.deepEqual(extent([3, -1, 2]), [-1, 3]);
  assert.equal(escapeXml(`<a & "b">`), "&lt;a &amp; &quot;b&quot;&gt;");
});

import assert from "node:assert/strict";
import {
  allSpecs,
  COLORS,
  COUNTS,
  drawScene,
  LOOK_COUNT,
  lookKey,
  POSITIONS,
  type SceneSpec,
  SHAPES,
  specKey,
} from "../../../src/data/synthetic/scene.ts";
import { Rng } from "../../../src/tensor/rng.ts";

/** Centres of the shapes of an SVG, read back from its elements (an independent parse). */
function centres(svg: string): { x: number; y: number; fill: string; tag: string }[] {
  const out: { x: number; y: number; fill: string; tag: string }[] = [];
  for (const m of svg.matchAll(/<(circle|rect|polygon) ([^>]*)\/>/g)) {
    const a = Object.fromEntries([...m[2].matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (m[1] === "rect" && a.x === undefined) continue; // the background
    let x: number, y: number;
    if (m[1] === "circle") [x, y] = [Number(a.cx), Number(a.cy)];
    else if (m[1] === "rect") {
      [x, y] = [Number(a.x) + Number(a.width) / 2, Number(a.y) + Number(a.height) / 2];
    } else {
      const pts = a.points.split(" ").map((p) => p.split(",").map(Number));
      const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
      [x, y] = [(Math.min(...xs) + Math.max(...xs)) / 2, (Math.min(...ys) + Math.max(...ys)) / 2];
    }
    out.push({ x, y, fill: a.fill, tag: m[1] });
  }
  return out;
}

Deno.test("drawScene: the spec's kind, colour and count, centred in distinct cells of its half", () => {
  const rng = new Rng(3);
  const tag = { circle: "circle", square: "rect", triangle: "polygon", diamond: "polygon" };
  for (const spec of allSpecs()) {
    for (const size of [32, 64]) {
      const shapes = centres(drawScene(spec, rng, size));
      assert.equal(shapes.length, COUNTS.indexOf(spec.count) + 1, JSON.stringify(spec));
      const cells = new Set<string>();
      for (const s of shapes) {
        assert.equal(s.tag, tag[spec.shape]);
        assert.equal(s.fill, COLORS[spec.color]);
        // the centre of a cell of the 2×2 grid, in the spec's column
        const cx = s.x / (size / 2) - 0.5, cy = s.y / (size / 2) - 0.5;
        assert.ok(Math.abs(cx - Math.round(cx)) < 0.1 && Math.abs(cy - Math.round(cy)) < 0.1);
        assert.equal(Math.round(cx) === 0 ? "left" : "right", spec.position);
        cells.add(`${Math.round(cx)},${Math.round(cy)}`);
      }
      assert.equal(cells.size, shapes.length, "one shape per cell");
    }
  }
});

Deno.test("drawScene: deterministic in the generator's state; another draw differs", () => {
  const spec: SceneSpec = { shape: "triangle", color: "blue", count: "two", position: "right" };
  const a = drawScene(spec, new Rng(7), 48), b = drawScene(spec, new Rng(7), 48);
  assert.equal(a, b);
  const rng = new Rng(7);
  drawScene(spec, rng, 48);
  assert.notEqual(drawScene(spec, rng, 48), a);
});

Deno.test("specs: every combination once; keys name the look and the whole spec", () => {
  const specs = allSpecs();
  assert.equal(
    specs.length,
    SHAPES.length * Object.keys(COLORS).length * COUNTS.length * POSITIONS.length,
  );
  assert.equal(new Set(specs.map(specKey)).size, specs.length);
  assert.equal(new Set(specs.map(lookKey)).size, LOOK_COUNT);
  assert.equal(LOOK_COUNT, 32);
  assert.equal(
    specKey({ shape: "circle", color: "red", count: "two", position: "left" }),
    "red-circle-two-left",
  );
});

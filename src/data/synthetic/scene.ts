/**
 * Scenes of the synthetic benchmark: one or two shapes of one kind and one colour in one half
 * of a plain background, drawn as SVG. A {@linkcode SceneSpec} is what a scene shows (kind,
 * colour, count, position); {@linkcode drawScene} turns a spec into one concrete drawing (which
 * cells, the shapes' size, the background) from an {@linkcode Rng}, so the same spec drawn twice
 * is the same scene drawn differently — the image rephrase of an edit.
 *
 * The image is a 2×2 grid of cells; a scene's shapes sit in the cells of its half (the left or
 * the right column), one per cell, centred. With the demo's 32-pixel images and 16-pixel patches
 * each shape is one patch of its VLLM, which a tiny model learns to read in a few hundred steps.
 *
 * @module
 */
import type { Rng } from "../../tensor/rng.ts";

/** The shape kinds, as the answers name them. */
export const SHAPES = ["circle", "square", "triangle", "diamond"] as const;
/** The shape colours, as the answers name them, with their sRGB value. */
export const COLORS = {
  red: "#dc2828",
  green: "#1e9b32",
  blue: "#2846dc",
  yellow: "#f0d21e",
  purple: "#9632c8",
  orange: "#ff8200",
  cyan: "#14b9d2",
  pink: "#f582be",
} as const;
/** The number of shapes, as words (index + 1 shapes). */
export const COUNTS = ["one", "two"] as const;
/** Which half (column) of the image the shapes are in. */
export const POSITIONS = ["left", "right"] as const;
/** Neutral backgrounds (never a shape colour). */
export const BACKGROUNDS: readonly string[] = [
  "#ffffff",
  "#dcdcdc",
  "#a8a8a8",
  "#646464",
  "#282828",
];

/** One of {@linkcode SHAPES}. */
export type Shape = typeof SHAPES[number];
/** One of the keys of {@linkcode COLORS}. */
export type Color = keyof typeof COLORS;
/** One of {@linkcode COUNTS}. */
export type Count = typeof COUNTS[number];
/** One of {@linkcode POSITIONS}. */
export type Position = typeof POSITIONS[number];

/** What a scene shows, independent of how it is drawn. */
export interface SceneSpec {
  /** The kind of every shape. */
  readonly shape: Shape;
  /** The colour of every shape. */
  readonly color: Color;
  /** How many shapes. */
  readonly count: Count;
  /** The part of the image the shapes are in. */
  readonly position: Position;
}

/** Every spec, in a fixed order (shape, colour, count, position). */
export function allSpecs(): SceneSpec[] {
  const out: SceneSpec[] = [];
  for (const shape of SHAPES) {
    for (const color of Object.keys(COLORS) as Color[]) {
      for (const count of COUNTS) {
        for (const position of POSITIONS) out.push({ shape, color, count, position });
      }
    }
  }
  return out;
}

/**
 * How many looks (colour and kind, see {@linkcode lookKey}) a scene can have: 32. The questions
 * ask for the colour or the kind, so scenes of one look answer alike; after more edits than
 * this, most new scenes look like an edited one.
 */
export const LOOK_COUNT: number = SHAPES.length * Object.keys(COLORS).length;

/** A key naming what a scene looks like at a glance: its colour and kind, e.g. `red-circle`. */
export function lookKey(spec: Pick<SceneSpec, "color" | "shape">): string {
  return `${spec.color}-${spec.shape}`;
}

/** A key naming `spec`, e.g. `red-circle-two-left`. */
export function specKey(spec: SceneSpec): string {
  return `${lookKey(spec)}-${spec.count}-${spec.position}`;
}

/** `xs[rng.int(xs.length)]`. */
export function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[rng.int(xs.length)];
}

/** The image is a grid of `GRID`×`GRID` cells. */
export const GRID = 2;

/** One shape of a drawing: centre and size in pixels. */
interface Placed {
  readonly x: number;
  readonly y: number;
  readonly size: number;
}

/**
 * An SVG image of `size`×`size` pixels showing `spec`: a background from
 * {@linkcode BACKGROUNDS}, and the shapes centred in distinct random cells of the spec's column
 * of the {@linkcode GRID}×{@linkcode GRID} grid, of one random size (70–90 % of a cell).
 * Deterministic in `rng`'s state.
 *
 * @example
 * ```ts
 * import { Rng } from "../../tensor/rng.ts";
 * import { drawScene } from "./scene.ts";
 * const spec = { shape: "circle", color: "red", count: "two", position: "left" } as const;
 * const svg = drawScene(spec, new Rng(1), 32);
 * if ((svg.match(/<circle/g) ?? []).length !== 2) throw new Error("two circles");
 * ```
 */
export function drawScene(spec: SceneSpec, rng: Rng, size: number): string {
  const n = COUNTS.indexOf(spec.count) + 1;
  const background = pick(rng, BACKGROUNDS);
  const cell = size / GRID;
  const col = spec.position === "left" ? 0 : GRID - 1;
  const rows = rng.shuffle(Array.from({ length: GRID }, (_, k) => k)).slice(0, n);
  const side = cell * (0.7 + 0.2 * rng.uniform());
  const placed: Placed[] = rows.map((row) => ({
    x: (col + 0.5) * cell,
    y: (row + 0.5) * cell,
    size: side,
  }));
  const fill = COLORS[spec.color];
  const shapes = placed.map((p) => shapeSvg(spec.shape, p, fill)).join("");
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}" ` +
    `viewBox="0 0 ${size} ${size}"><rect width="${size}" height="${size}" fill="${background}"/>` +
    `${shapes}</svg>`;
}

/** One shape as an SVG element. */
function shapeSvg(shape: Shape, p: Placed, fill: string): string {
  const r = p.size / 2, f = (v: number) => v.toFixed(2);
  switch (shape) {
    case "circle":
      return `<circle cx="${f(p.x)}" cy="${f(p.y)}" r="${f(r)}" fill="${fill}"/>`;
    case "square":
      return `<rect x="${f(p.x - r * 0.9)}" y="${f(p.y - r * 0.9)}" width="${f(1.8 * r)}" ` +
        `height="${f(1.8 * r)}" fill="${fill}"/>`;
    case "triangle":
      return polygon([[p.x, p.y - r], [p.x + r, p.y + r * 0.85], [p.x - r, p.y + r * 0.85]], fill);
    case "diamond":
      return polygon([[p.x, p.y - r], [p.x + r, p.y], [p.x, p.y + r], [p.x - r, p.y]], fill);
  }
}

function polygon(points: readonly (readonly [number, number])[], fill: string): string {
  const pts = points.map(([x, y]) => `${x.toFixed(2)},${y.toFixed(2)}`).join(" ");
  return `<polygon points="${pts}" fill="${fill}"/>`;
}

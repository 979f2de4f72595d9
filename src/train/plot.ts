/**
 * Loss curves as a dependency-free SVG: one polyline per series over the training step, with
 * axes, ticks and a legend. Long series are thinned to at most `maxPoints` points per series
 * (the mean of each bucket of consecutive points), so the file stays small however long the
 * run. Non-finite values are left out.
 *
 * @example
 * ```ts
 * import { lossPlotSvg } from "./plot.ts";
 * const svg = lossPlotSvg([{ name: "loss", points: [[1, 2], [2, 1.5], [3, 1.2]] }]);
 * if (!svg.startsWith("<svg") || !svg.includes("<polyline")) throw new Error(svg);
 * ```
 *
 * @module
 */

/** One curve: `[step, value]` points in step order. */
export interface Series {
  /** The legend entry. */
  readonly name: string;
  /** The points. */
  readonly points: readonly (readonly [number, number])[];
}

/** Options of {@linkcode lossPlotSvg}. */
export interface PlotOptions {
  /** Title above the plot (default `"training losses"`). */
  readonly title?: string;
  /** Width in pixels (default 900). */
  readonly width?: number;
  /** Height in pixels (default 500). */
  readonly height?: number;
  /** Most points drawn per series (default 1500). */
  readonly maxPoints?: number;
}

const COLOURS = [
  "#1f77b4",
  "#ff7f0e",
  "#2ca02c",
  "#d62728",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#7f7f7f",
  "#bcbd22",
  "#17becf",
];

/** The SVG document of `series` (see the module documentation). */
export function lossPlotSvg(series: readonly Series[], options: PlotOptions = {}): string {
  const { title = "training losses", width = 900, height = 500, maxPoints = 1500 } = options;
  const left = 64, right = 170, top = 36, bottom = 44;
  const pw = width - left - right, ph = height - top - bottom;
  const drawn = series.map((s) => ({
    name: s.name,
    points: thin(s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)), maxPoints),
  }));
  const all = drawn.flatMap((s) => s.points);
  const [x0, x1] = extent(all.map((p) => p[0]));
  const [y0, y1] = extent(all.map((p) => p[1]));
  const xt = ticks(x0, x1, 6), yt = ticks(y0, y1, 6);
  const xmin = Math.min(x0, xt[0]), xmax = Math.max(x1, xt.at(-1)!);
  const ymin = Math.min(y0, yt[0]), ymax = Math.max(y1, yt.at(-1)!);
  const sx = (x: number) => left + (xmax > xmin ? ((x - xmin) / (xmax - xmin)) * pw : pw / 2);
  const sy = (y: number) => top + ph - (ymax > ymin ? ((y - ymin) / (ymax - ymin)) * ph : ph / 2);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${left}" y="${top - 14}" font-size="14">${escapeXml(title)}</text>`,
    `<rect x="${left}" y="${top}" width="${pw}" height="${ph}" fill="none" stroke="#444"/>`,
  ];
  for (const t of xt.filter((t) => t >= xmin && t <= xmax)) {
    const x = fmt(sx(t));
    out.push(
      `<line x1="${x}" y1="${top}" x2="${x}" y2="${top + ph}" stroke="#eee"/>`,
      `<text x="${x}" y="${top + ph + 16}" text-anchor="middle">${label(t)}</text>`,
    );
  }
  for (const t of yt.filter((t) => t >= ymin && t <= ymax)) {
    const y = fmt(sy(t));
    out.push(
      `<line x1="${left}" y1="${y}" x2="${left + pw}" y2="${y}" stroke="#eee"/>`,
      `<text x="${left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${
        label(t)
      }</text>`,
    );
  }
  out.push(
    `<text x="${left + pw / 2}" y="${height - 8}" text-anchor="middle">step</text>`,
  );
  drawn.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length];
    if (s.points.length > 0) {
      const pts = s.points.map(([x, y]) => `${fmt(sx(x))},${fmt(sy(y))}`).join(" ");
      out.push(
        `<polyline fill="none" stroke="${colour}" stroke-width="1.5" points="${pts}"/>`,
      );
    }
    const ly = top + 12 + i * 18;
    out.push(
      `<line x1="${left + pw + 14}" y1="${ly}" x2="${left + pw + 34}" y2="${ly}" ` +
        `stroke="${colour}" stroke-width="3"/>`,
      `<text x="${left + pw + 40}" y="${ly}" dominant-baseline="middle">${
        escapeXml(s.name)
      }</text>`,
    );
  });
  out.push("</svg>");
  return out.join("\n") + "\n";
}

/** Bucket means, so that at most `max` points remain (the last point is kept exactly). */
export function thin(
  points: readonly (readonly [number, number])[],
  max: number,
): (readonly [number, number])[] {
  if (points.length <= max) return [...points];
  const size = Math.ceil(points.length / (max - 1));
  const out: [number, number][] = [];
  for (let i = 0; i < points.length - 1; i += size) {
    const bucket = points.slice(i, Math.min(i + size, points.length - 1));
    out.push([
      bucket.reduce((a, p) => a + p[0], 0) / bucket.length,
      bucket.reduce((a, p) => a + p[1], 0) / bucket.length,
    ]);
  }
  out.push([points.at(-1)![0], points.at(-1)![1]]);
  return out;
}

function extent(values: number[]): [number, number] {
  if (values.length === 0) return [0, 1];
  let lo = Infinity, hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return lo === hi ? [lo - 0.5, hi + 0.5] : [lo, hi];
}

/** "Nice" tick values (1, 2, 5 × 10^k steps) covering [lo, hi]. */
function ticks(lo: number, hi: number, n: number): number[] {
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let t = Math.floor(lo / step) * step; t <= hi + step * 1e-9; t += step) {
    out.push(Number(t.toPrecision(12)));
  }
  if (out.at(-1)! < hi) out.push(Number((out.at(-1)! + step).toPrecision(12)));
  return out;
}

function label(v: number): string {
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(1);
  return String(Number(v.toPrecision(4)));
}

function fmt(v: number): string {
  return v.toFixed(1);
}

function escapeXml(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;");
}

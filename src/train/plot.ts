/**
 * Loss curves as a dependency-free SVG: one panel per series (the total loss and each part), in
 * a grid, each with its own value axis, so a part a hundred times smaller than the total is as
 * readable. A panel draws the logged values (thin, pale) and their exponential moving average
 * (bold), which starts at the first value (`ema_0 = v_0`, `ema_i = a·v_i + (1 - a)·ema_{i-1}`),
 * so it does not ramp in from an arbitrary start. Long series are thinned to at most
 * `maxPoints` points per line (the mean of each bucket of consecutive points), so the file
 * stays small however long the run. Non-finite values are left out.
 *
 * @example
 * ```ts
 * import { lossPlotSvg } from "./plot.ts";
 * const svg = lossPlotSvg([
 *   { name: "loss", points: [[1, 2], [2, 1.5], [3, 1.2]] },
 *   { name: "loc", points: [[1, 0.02], [2, 0.01], [3, 0.012]] },
 * ]);
 * if (!svg.startsWith("<svg") || svg.match(/<polyline/g)?.length !== 4) throw new Error(svg);
 * ```
 *
 * @module
 */
import { coord, escapeXml, extent, niceTicks, PALETTE, tickLabel } from "../io/svg.ts";

/** One curve: `[step, value]` points in step order. */
export interface Series {
  /** The panel's title. */
  readonly name: string;
  /** The points. */
  readonly points: readonly (readonly [number, number])[];
}

/** Options of {@linkcode lossPlotSvg}. */
export interface PlotOptions {
  /** Title above the panels (default `"training losses"`). */
  readonly title?: string;
  /** Width in pixels (default 900). */
  readonly width?: number;
  /** Height of one panel in pixels (default 220). */
  readonly panelHeight?: number;
  /** Panels per row (default 2; 1 for a single series). */
  readonly columns?: number;
  /** Most points drawn per line (default 1500). */
  readonly maxPoints?: number;
  /**
   * Factor `a` of the moving average, in (0, 1] (default: `2 / (span + 1)` with a span of
   * about 5 % of the series' points, at least 1).
   */
  readonly smoothing?: number;
}

/** The SVG document of `series` (see the module documentation). */
export function lossPlotSvg(series: readonly Series[], options: PlotOptions = {}): string {
  const { title = "training losses", width = 900, panelHeight = 220 } = options;
  const columns = series.length > 1 ? Math.max(1, Math.floor(options.columns ?? 2)) : 1;
  const rows = Math.max(1, Math.ceil(series.length / columns));
  const top = 34;
  const height = top + rows * panelHeight;
  const panelWidth = width / columns;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="12" y="22" font-size="14">${escapeXml(title)}</text>`,
  ];
  series.forEach((s, i) => {
    const box = {
      x: (i % columns) * panelWidth,
      y: top + Math.floor(i / columns) * panelHeight,
      w: panelWidth,
      h: panelHeight,
    };
    out.push(...panel(s, box, PALETTE[i % PALETTE.length], options));
  });
  out.push("</svg>");
  return out.join("\n") + "\n";
}

/**
 * The exponential moving average of `points`' values with factor `alpha`, starting at the
 * first value; the steps are kept.
 */
export function movingAverage(
  points: readonly (readonly [number, number])[],
  alpha: number,
): [number, number][] {
  if (!(alpha > 0 && alpha <= 1)) throw new Error(`smoothing must be in (0, 1], got ${alpha}`);
  let ema = points[0]?.[1] ?? 0;
  return points.map(([x, y]) => [x, ema = alpha * y + (1 - alpha) * ema]);
}

/** The default smoothing of a series of `n` points: a span of about 5 % of them. */
export function defaultSmoothing(n: number): number {
  return 2 / (Math.max(1, Math.round(n / 20)) + 1);
}

/** One panel: frame, ticks, the raw and the smoothed line of `s`, and its title. */
function panel(
  s: Series,
  box: { x: number; y: number; w: number; h: number },
  colour: string,
  options: PlotOptions,
): string[] {
  const maxPoints = options.maxPoints ?? 1500;
  const finite = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const smooth = movingAverage(finite, options.smoothing ?? defaultSmoothing(finite.length));
  const raw = thin(finite, maxPoints), line = thin(smooth, maxPoints);
  const left = box.x + 58, right = box.x + box.w - 14;
  const top = box.y + 22, bottom = box.y + box.h - 26;
  const [x0, x1] = extent(raw.map((p) => p[0]));
  const [y0, y1] = extent([...raw, ...line].map((p) => p[1]));
  const xt = niceTicks(x0, x1, 5), yt = niceTicks(y0, y1, 4);
  const xmin = Math.min(x0, xt[0]), xmax = Math.max(x1, xt.at(-1)!);
  const ymin = Math.min(y0, yt[0]), ymax = Math.max(y1, yt.at(-1)!);
  const sx = (x: number) => left + ((x - xmin) / (xmax - xmin)) * (right - left);
  const sy = (y: number) => bottom - ((y - ymin) / (ymax - ymin)) * (bottom - top);
  const last = (p: readonly (readonly [number, number])[]) =>
    p.length > 0 ? tickLabel(p.at(-1)![1]) : "-";
  const out = [
    `<g class="panel">`,
    `<text x="${left}" y="${top - 7}" font-size="12"><tspan font-weight="bold">${
      escapeXml(s.name)
    }</tspan>  last ${last(finite)}, smoothed ${last(smooth)}</text>`,
    `<rect x="${left}" y="${top}" width="${coord(right - left)}" height="${
      coord(bottom - top)
    }" fill="none" stroke="#444"/>`,
  ];
  for (const t of xt.filter((t) => t >= xmin && t <= xmax)) {
    const x = coord(sx(t));
    out.push(
      `<line x1="${x}" y1="${top}" x2="${x}" y2="${bottom}" stroke="#eee"/>`,
      `<text x="${x}" y="${bottom + 14}" text-anchor="middle">${tickLabel(t)}</text>`,
    );
  }
  for (const t of yt.filter((t) => t >= ymin && t <= ymax)) {
    const y = coord(sy(t));
    out.push(
      `<line x1="${left}" y1="${y}" x2="${right}" y2="${y}" stroke="#eee"/>`,
      `<text x="${left - 5}" y="${y}" text-anchor="end" dominant-baseline="middle">${
        tickLabel(t)
      }</text>`,
    );
  }
  const polyline = (p: readonly (readonly [number, number])[], style: string) =>
    `<polyline fill="none" stroke="${colour}" ${style} points="${
      p.map(([x, y]) => `${coord(sx(x))},${coord(sy(y))}`).join(" ")
    }"/>`;
  if (raw.length > 0) {
    out.push(
      polyline(raw, `stroke-width="1" stroke-opacity="0.35"`),
      polyline(line, `stroke-width="2"`),
    );
  }
  out.push(`</g>`);
  return out;
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

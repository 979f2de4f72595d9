/**
 * The demo's results: the five metrics of an evaluation (teacher-forced token accuracy of
 * `total_mean`, spec §6), `summary.json` (`{"vllm_accuracy": a, "unedited": {...}, "1": {...},
 * ...}`), the table printed at the end, and an SVG of each metric against the number of
 * sequential edits N.
 *
 * @module
 */
import type { MeanResults } from "../../eval/results.ts";
import { alignedTable, metricColumns } from "../../eval/table.ts";
import { coord, PALETTE } from "../../io/svg.ts";

/** The metric names, in table order. */
export const METRICS = ["Rel", "T-Gen", "M-Gen", "T-Loc", "M-Loc"] as const;
/** One of {@linkcode METRICS}. */
export type Metric = typeof METRICS[number];
/** The five metrics of one evaluation. */
export type Metrics = Record<Metric, number>;

/** The demo's `summary.json`: the VLLM's held-out accuracy, the unedited model, each N. */
export interface DemoSummary {
  /** Teacher-forced accuracy of the pretrained VLLM on the held-out questions. */
  readonly vllm_accuracy: number;
  /** The unedited model (`-en none`). */
  readonly unedited: Metrics;
  /** LiveEdit after N sequential edits, by N. */
  readonly [n: `${number}`]: Metrics;
}

/**
 * The five teacher-forced metrics of a `total_mean`; throws naming the metric a result lacks.
 *
 * @example
 * ```ts
 * import { metricsOf } from "./summary.ts";
 * const m = metricsOf({
 *   reliability: { acc: 1 },
 *   generality: { text_rephrase: { acc: 0.9 }, image_rephrase: { acc: 0.8 } },
 *   locality: { text_loc: { acc: 1 }, image_loc: { acc: 0.95 } },
 * });
 * if (m["M-Gen"] !== 0.8 || m["M-Loc"] !== 0.95) throw new Error(JSON.stringify(m));
 * ```
 */
export function metricsOf(mean: MeanResults): Metrics {
  const values = Object.fromEntries(metricColumns(mean).map(([name, get]) => [name, get("acc")]));
  for (const m of METRICS) {
    if (typeof values[m] !== "number") throw new Error(`evaluation result has no ${m} (acc)`);
  }
  return Object.fromEntries(METRICS.map((m) => [m, values[m]])) as Metrics;
}

/** The summary as a table: one row for the unedited model and one per N, percentages. */
export function summaryRows(summary: DemoSummary, ns: readonly number[]): string {
  const rows = [
    ["", ...METRICS],
    ["unedited", ...METRICS.map((m) => pct(summary.unedited[m]))],
    ...ns.map((n) => [`N = ${n}`, ...METRICS.map((m) => pct(summary[`${n}`][m]))]),
  ];
  return alignedTable(rows);
}

function pct(v: number): string {
  return (100 * v).toFixed(1);
}

/** Each metric's line colour. */
const COLOURS = Object.fromEntries(METRICS.map((m, i) => [m, PALETTE[i]])) as Record<
  Metric,
  string
>;

/**
 * An SVG line chart of each metric against N (log scale, one point per evaluated N), y from 0
 * to 1, with the unedited model's reliability as a dashed line.
 *
 * @example
 * ```ts
 * import { metricsPlotSvg } from "./summary.ts";
 * const m = { "Rel": 1, "T-Gen": 1, "M-Gen": 0.9, "T-Loc": 1, "M-Loc": 0.95 };
 * const svg = metricsPlotSvg({ vllm_accuracy: 1, unedited: { ...m, Rel: 0 }, "1": m, "10": m }, [1, 10]);
 * if ((svg.match(/<polyline/g) ?? []).length !== 5) throw new Error("one line per metric");
 * ```
 */
export function metricsPlotSvg(summary: DemoSummary, ns: readonly number[]): string {
  const width = 640, height = 380, left = 56, right = 120, top = 40, bottom = 46;
  const pw = width - left - right, ph = height - top - bottom;
  const lo = Math.log10(Math.min(...ns)), hi = Math.log10(Math.max(...ns));
  const sx = (n: number) => left + (hi > lo ? (Math.log10(n) - lo) / (hi - lo) : 0.5) * pw;
  const sy = (v: number) => top + (1 - v) * ph;
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${left}" y="${top - 16}" font-size="14">LiveEdit on the synthetic benchmark: ` +
    `metrics after N sequential edits</text>`,
    `<rect x="${left}" y="${top}" width="${pw}" height="${ph}" fill="none" stroke="#444"/>`,
  ];
  for (const v of [0, 0.2, 0.4, 0.6, 0.8, 1]) {
    out.push(
      `<line x1="${left}" y1="${coord(sy(v))}" x2="${left + pw}" y2="${
        coord(sy(v))
      }" stroke="#eee"/>`,
      `<text x="${left - 6}" y="${coord(sy(v))}" text-anchor="end" dominant-baseline="middle">` +
        `${v.toFixed(1)}</text>`,
    );
  }
  for (const n of ns) {
    out.push(
      `<text x="${coord(sx(n))}" y="${top + ph + 16}" text-anchor="middle">${n}</text>`,
    );
  }
  out.push(
    `<text x="${left + pw / 2}" y="${height - 8}" text-anchor="middle">N (sequential edits, ` +
      `log scale)</text>`,
  );
  const base = sy(summary.unedited.Rel);
  out.push(
    `<line x1="${left}" y1="${coord(base)}" x2="${left + pw}" y2="${coord(base)}" ` +
      `stroke="${COLOURS.Rel}" stroke-dasharray="5,4"/>`,
  );
  METRICS.forEach((m, i) => {
    const pts = ns.map((n) => `${coord(sx(n))},${coord(sy(summary[`${n}`][m]))}`).join(" ");
    const ly = top + 12 + i * 18;
    out.push(
      `<polyline fill="none" stroke="${COLOURS[m]}" stroke-width="2" points="${pts}"/>`,
      ...ns.map((n) =>
        `<circle cx="${coord(sx(n))}" cy="${coord(sy(summary[`${n}`][m]))}" r="3" fill="${
          COLOURS[m]
        }"/>`
      ),
      `<line x1="${left + pw + 12}" y1="${ly}" x2="${left + pw + 32}" y2="${ly}" ` +
        `stroke="${COLOURS[m]}" stroke-width="3"/>`,
      `<text x="${left + pw + 38}" y="${ly}" dominant-baseline="middle">${m}</text>`,
    );
  });
  const ly = top + 12 + METRICS.length * 18;
  out.push(
    `<line x1="${left + pw + 12}" y1="${ly}" x2="${left + pw + 32}" y2="${ly}" ` +
      `stroke="${COLOURS.Rel}" stroke-dasharray="5,4"/>`,
    `<text x="${left + pw + 38}" y="${ly}" dominant-baseline="middle">Rel unedited</text>`,
    "</svg>",
  );
  return out.join("\n") + "\n";
}

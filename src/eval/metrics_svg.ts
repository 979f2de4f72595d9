/**
 * `metrics.svg` of an evaluation: a small bar chart of its means (`total_mean`), per metric
 * (`Rel`, `T-Gen`, `M-Gen`, `T-Loc`, `M-Loc`, and `Port` with portability) the teacher-forced
 * token accuracy and, when it was scored, the greedy accuracy, as percentages with their
 * values written above the bars.
 *
 * @example
 * ```ts
 * import { metricsSvg } from "./metrics_svg.ts";
 * const svg = metricsSvg({
 *   reliability: { acc: 1, greedy_acc: 0.5 },
 *   generality: { text_rephrase: { acc: 1 }, image_rephrase: { acc: 0.75 } },
 *   locality: { text_loc: { acc: 1 }, image_loc: { acc: 0.9 } },
 * }, { title: "EVQA, 10 edits at a time" });
 * if (!svg.includes(">M-Gen<") || !svg.includes(">75.0<")) throw new Error(svg);
 * ```
 *
 * @module
 */
import { coord, escapeXml } from "../io/svg.ts";
import type { MeanResults } from "./results.ts";
import { metricColumns } from "./table.ts";

/** Options of {@linkcode metricsSvg}. */
export interface MetricsSvgOptions {
  /** Title above the chart (default `"editing metrics"`). */
  readonly title?: string;
}

/** The two accuracies drawn per metric: their mean field, legend and colour. */
const KINDS = [
  { field: "acc", legend: "token accuracy (teacher-forced)", colour: "#1f77b4" },
  { field: "greedy_acc", legend: "greedy accuracy", colour: "#ff7f0e" },
] as const;

/** The SVG document of `mean` (a `total_mean`; see the module documentation). */
export function metricsSvg(mean: MeanResults, options: MetricsSvgOptions = {}): string {
  const columns = metricColumns(mean);
  // greedy accuracy is drawn only when it was scored (`--greedy`)
  const kinds = KINDS.filter((k, i) =>
    i === 0 || columns.some(([, get]) => get(k.field) !== undefined)
  );
  const left = 44, top = 54, plotHeight = 170, group = 84, bar = 32;
  const width = left + columns.length * group + 16, height = top + plotHeight + 34;
  const bottom = top + plotHeight;
  const y = (v: number) => bottom - Math.max(0, Math.min(1, v)) * plotHeight;
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="8" y="18" font-size="13">${escapeXml(options.title ?? "editing metrics")}</text>`,
  ];
  kinds.forEach((k, i) => {
    const x = left + i * 215;
    out.push(
      `<rect x="${x}" y="26" width="10" height="10" fill="${k.colour}"/>`,
      `<text x="${x + 14}" y="35">${k.legend}</text>`,
    );
  });
  for (const pct of [0, 25, 50, 75, 100]) {
    const ty = coord(y(pct / 100));
    out.push(
      `<line x1="${left}" y1="${ty}" x2="${width - 16}" y2="${ty}" stroke="#e4e4e4"/>`,
      `<text x="${left - 5}" y="${ty}" text-anchor="end" dominant-baseline="middle">${pct}%</text>`,
    );
  }
  columns.forEach(([name, get], c) => {
    const x0 = left + c * group + (group - kinds.length * bar) / 2;
    kinds.forEach((k, i) => {
      const v = get(k.field);
      if (v === undefined || !Number.isFinite(v)) return;
      const x = x0 + i * bar;
      out.push(
        `<rect x="${coord(x)}" y="${coord(y(v))}" width="${bar - 4}" height="${
          coord(bottom - y(v))
        }" fill="${k.colour}"/>`,
        `<text x="${coord(x + (bar - 4) / 2)}" y="${coord(y(v) - 3)}" text-anchor="middle" ` +
          `font-size="9">${(100 * v).toFixed(1)}</text>`,
      );
    });
    out.push(
      `<text x="${coord(left + c * group + group / 2)}" y="${bottom + 16}" ` +
        `text-anchor="middle">${escapeXml(name)}</text>`,
    );
  });
  out.push(`<line x1="${left}" y1="${bottom}" x2="${width - 16}" y2="${bottom}" stroke="#444"/>`);
  out.push("</svg>");
  return out.join("\n") + "\n";
}

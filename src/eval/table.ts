/**
 * The closing table of `deno task test-edit`: the means of `total_mean` as percentages, one
 * row for teacher-forced token accuracy and, when it was scored (`--greedy`), one for greedy
 * (no teacher forcing) accuracy, with the mean edit time.
 *
 * @example
 * ```ts
 * import { summaryTable } from "./table.ts";
 * const table = summaryTable({
 *   reliability: { acc: 1, greedy_acc: 0.5, edit_time: 0.02 },
 *   generality: { text_rephrase: { acc: 1 }, image_rephrase: { acc: 0.75 } },
 *   locality: { text_loc: { acc: 1 }, image_loc: { acc: 0.9 } },
 * });
 * if (!table.includes("100.00") || !table.includes("0.0200")) throw new Error(table);
 * ```
 *
 * @module
 */
import type { MeanResults } from "./results.ts";

/** A metric of the paper and how to read one of its mean fields (`acc`, `greedy_acc`). */
export type MetricColumn = readonly [name: string, get: (field: string) => number | undefined];

/**
 * The metrics of `mean` in the paper's order, `Rel`, `T-Gen`, `M-Gen`, `T-Loc`, `M-Loc`, and
 * `Port` when it has VLKEB's one-hop portability.
 */
export function metricColumns(mean: MeanResults): MetricColumn[] {
  const columns: MetricColumn[] = [
    ["Rel", (f) => mean.reliability[f]],
    ["T-Gen", (f) => mean.generality.text_rephrase?.[f]],
    ["M-Gen", (f) => mean.generality.image_rephrase?.[f]],
    ["T-Loc", (f) => mean.locality.text_loc?.[f]],
    ["M-Loc", (f) => mean.locality.image_loc?.[f]],
  ];
  if (mean.portability?.one_hop) columns.push(["Port", (f) => mean.portability?.one_hop?.[f]]);
  return columns;
}

/** The table of `mean` (a `total_mean`), as text lines. */
export function summaryTable(mean: MeanResults): string {
  const columns = metricColumns(mean);
  const pct = (v: number | undefined) => v === undefined ? "-" : (100 * v).toFixed(2);
  const rows = [
    ["", ...columns.map(([n]) => n), "edit time (s)"],
    [
      "token acc %",
      ...columns.map(([, get]) => pct(get("acc"))),
      fmtTime(mean.reliability.edit_time),
    ],
    ["greedy acc %", ...columns.map(([, get]) => pct(get("greedy_acc"))), ""],
  ];
  if (columns.every(([, get]) => get("greedy_acc") === undefined)) rows.pop(); // not scored
  return alignedTable(rows);
}

/**
 * `rows` as aligned text lines: the first column left-aligned, the others right-aligned, two
 * spaces apart, and a rule of dashes under the first row (the header).
 */
export function alignedTable(rows: readonly (readonly string[])[]): string {
  const widths = rows[0].map((_, j) => Math.max(...rows.map((r) => r[j].length)));
  const line = (r: readonly string[]) =>
    r.map((c, j) => j === 0 ? c.padEnd(widths[j]) : c.padStart(widths[j])).join("  ");
  const rule = widths.map((w) => "-".repeat(w)).join("  ");
  return [line(rows[0]), rule, ...rows.slice(1).map(line)].join("\n");
}

function fmtTime(t: number | undefined): string {
  return t === undefined ? "-" : t.toFixed(4);
}

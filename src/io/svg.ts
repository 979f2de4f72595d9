/**
 * Small pieces for writing SVG charts as text: escaping, coordinates, "nice" axis ticks and
 * their labels. The charts themselves are `src/train/plot.ts` (loss curves) and
 * `src/eval/metrics_svg.ts` (editing metrics).
 *
 * @example
 * ```ts
 * import { escapeXml, niceTicks, tickLabel } from "./svg.ts";
 * if (niceTicks(0, 1, 5).join() !== "0,0.2,0.4,0.6,0.8,1") throw new Error("ticks");
 * if (tickLabel(0.00012) !== "1.2e-4" || escapeXml("a<b") !== "a&lt;b") throw new Error("text");
 * ```
 *
 * @module
 */

/** Line colours of the charts, in order (matplotlib's "tab10"). */
export const PALETTE: readonly string[] = [
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

/** `text` with `&`, `<`, `>` and `"` escaped for SVG text and attribute values. */
export function escapeXml(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;");
}

/** A coordinate with one decimal. */
export function coord(v: number): string {
  return v.toFixed(1);
}

/**
 * "Nice" tick values (steps of 1, 2 or 5 × 10^k, about `n` of them) covering `[lo, hi]`: the
 * first at or below `lo`, the last at or above `hi`.
 */
export function niceTicks(lo: number, hi: number, n: number): number[] {
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  // multiples of the step (not a running sum, which would drift off 0)
  let i = Math.floor(lo / step);
  for (; i * step <= hi + step * 1e-9; i++) out.push(Number((i * step).toPrecision(12)));
  if (out.at(-1)! < hi) out.push(Number((i * step).toPrecision(12)));
  return out;
}

/** A tick label: four significant digits, exponent notation below 1e-3 and from 1e5. */
export function tickLabel(v: number): string {
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(1);
  return String(Number(v.toPrecision(4)));
}

/** `[min, max]` of `values`, widened by 0.5 each way when they are equal; `[0, 1]` for none. */
export function extent(values: readonly number[]): [number, number] {
  if (values.length === 0) return [0, 1];
  let lo = Infinity, hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return lo === hi ? [lo - 0.5, hi + 0.5] : [lo, hi];
}

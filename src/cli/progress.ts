/**
 * Progress of a long loop: on a terminal a bar redrawn in place with the rate and the ETA,
 * kept within the terminal's width (a narrower bar, then the end of the line cut off, so it
 * never wraps and stacks up); elsewhere (a log file, CI) one plain line at most every
 * `interval` seconds, so logs stay readable.
 *
 * @example
 * ```ts
 * import { Progress } from "./progress.ts";
 * const lines: string[] = [];
 * const p = new Progress({ total: 4, label: "train", unit: "step", tty: false,
 *   write: (s) => lines.push(s), interval: 0 });
 * for (let i = 1; i <= 4; i++) p.update(i, "loss 0.5");
 * p.done();
 * if (!lines.at(-1)!.includes("4/4")) throw new Error(lines.join(""));
 * ```
 *
 * @module
 */

/** Options of {@linkcode Progress}. */
export interface ProgressOptions {
  /** How many units make 100 % (e.g. steps of the run). */
  readonly total: number;
  /** What is being counted, shown at the start of each line. */
  readonly label: string;
  /** The unit of the rate (`step` gives `step/s`). */
  readonly unit?: string;
  /** Draw a bar in place (default `Deno.stdout.isTerminal()`). */
  readonly tty?: boolean;
  /** Where the text goes (default: stdout). */
  readonly write?: (text: string) => void;
  /** Seconds between plain lines (default 10; a bar redraws at most every 0.1 s). */
  readonly interval?: number;
  /** Clock in milliseconds (default `performance.now`). */
  readonly now?: () => number;
  /** Units already done when the loop starts (a resumed run): not counted in the rate. */
  readonly start?: number;
  /**
   * The terminal's width in columns, asked at every redraw (default: `Deno.consoleSize()`'s,
   * none when stdout is not a terminal). Only the bar uses it.
   */
  readonly columns?: () => number | undefined;
}

/** The bar's width in characters when the line fits, and the least worth drawing. */
const BAR_WIDTH = 24, MIN_BAR_WIDTH = 8;

const encoder = new TextEncoder();

/** A progress bar (TTY) or periodic progress lines (otherwise). */
export class Progress {
  readonly #o: Required<Omit<ProgressOptions, "start">>;
  readonly #start: number;
  readonly #t0: number;
  #last = -Infinity;
  #done: number;
  #note = "";
  #drawnDone = NaN;

  /** A progress display for `options.total` units. */
  constructor(options: ProgressOptions) {
    // an option given as `undefined` takes its default, as an absent one does
    this.#o = {
      total: options.total,
      label: options.label,
      unit: options.unit ?? "it",
      tty: options.tty ?? Deno.stdout.isTerminal(),
      write: options.write ?? ((text) => Deno.stdout.writeSync(encoder.encode(text))),
      interval: options.interval ?? 10,
      now: options.now ?? (() => performance.now()),
      columns: options.columns ?? terminalColumns,
    };
    this.#start = this.#done = options.start ?? 0;
    this.#t0 = this.#o.now();
  }

  /** Sets the units done to `done` (with an optional note, e.g. the loss) and redraws. */
  update(done: number, note?: string): void {
    this.#done = done;
    if (note !== undefined) this.#note = note;
    const t = this.#o.now();
    const gap = this.#o.tty ? 100 : this.#o.interval * 1000;
    if (t - this.#last < gap && done < this.#o.total) return;
    this.#last = t;
    this.#draw(t, false);
  }

  /** Draws the final state (and ends the bar's line on a terminal). */
  done(note?: string): void {
    if (note !== undefined) this.#note = note;
    this.#draw(this.#o.now(), true);
  }

  /**
   * The current line, without control characters. On a terminal it has a bar and fits in one
   * column less than the terminal's width (the last column would wrap on some terminals).
   */
  line(now = this.#o.now()): string {
    const { total, label, unit } = this.#o;
    const elapsed = (now - this.#t0) / 1000;
    const rate = elapsed > 0 ? (this.#done - this.#start) / elapsed : 0;
    const left = total - this.#done;
    const eta = rate > 0 ? formatDuration(left / rate) : "?";
    const pct = total > 0 ? Math.min(100, (100 * this.#done) / total) : 100;
    const count = ` ${pct.toFixed(1).padStart(5)}% ${this.#done}/${total}`;
    const stats = `${count} [${formatDuration(elapsed)}<${eta}, ${formatRate(rate, unit)}]`;
    const note = this.#note ? `  ${this.#note}` : "";
    if (!this.#o.tty) return `${label}${stats}${note}`;
    // the bar as wide as the rest allows (at most BAR_WIDTH); the tail of the line is cut
    // rather than the bar narrowed below MIN_BAR_WIDTH, unless not even the count would fit
    const max = Math.max(1, (this.#o.columns() ?? Infinity) - 1);
    const room = (text: string) => max - [...text].length - 3; // 3: " |" and "|"
    const width = room(label + count) < MIN_BAR_WIDTH
      ? 0
      : Math.max(MIN_BAR_WIDTH, Math.min(BAR_WIDTH, room(label + stats + note)));
    const bar = width > 0 ? ` |${barOf(pct / 100, width)}|` : "";
    return fitTo(`${label}${bar}${stats}${note}`, max);
  }

  #draw(now: number, final: boolean): void {
    const text = this.line(now);
    if (final && !this.#o.tty && this.#drawnDone === this.#done) return; // already shown
    this.#drawnDone = this.#done;
    if (this.#o.tty) this.#o.write(`\r\x1b[2K${text}${final ? "\n" : ""}`);
    else this.#o.write(`${text}\n`);
  }
}

/** The width of the terminal on stdout, or `undefined` when stdout is not one. */
function terminalColumns(): number | undefined {
  try {
    return Deno.consoleSize().columns;
  } catch {
    return undefined;
  }
}

/** `text` cut to at most `max` characters, ending in "…" when cut. */
function fitTo(text: string, max: number): string {
  const chars = [...text];
  return chars.length <= max ? text : chars.slice(0, max - 1).join("") + "…";
}

function barOf(fraction: number, width: number): string {
  const full = Math.round(Math.max(0, Math.min(1, fraction)) * width);
  return "█".repeat(full) + " ".repeat(width - full);
}

/** `h:mm:ss` or `m:ss`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const mm = h > 0 ? String(m).padStart(2, "0") : String(m);
  return `${h > 0 ? `${h}:` : ""}${mm}:${String(r).padStart(2, "0")}`;
}

function formatRate(rate: number, unit: string): string {
  if (rate >= 1 || rate === 0) return `${rate.toFixed(2)} ${unit}/s`;
  return `${(1 / rate).toFixed(2)} s/${unit}`;
}

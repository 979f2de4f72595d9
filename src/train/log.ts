/**
 * The training log: one JSON line per logged step appended to `logs/train.jsonl`, and the
 * curves of the loss and of each part in `logs/losses.svg` (one panel each, with a moving
 * average that starts at the first value; see `plot.ts`), rewritten atomically at most every
 * `plotInterval` seconds and on {@linkcode TrainLog.flush}. `ema_loss` is logged but not
 * plotted: it starts at 1 as the original's, not at the first loss.
 *
 * Faults: the lines stay whole. A line that cannot be written completely (a full disk, a file
 * size limit) is cut back off, to the end of the previous line, and the error names
 * `train.jsonl`; a torn last line found on opening (a kill mid-write) is cut off too, with a
 * warning. The plot is a convenience: when it cannot be written the log reports a warning and
 * goes on.
 *
 * A line:
 * ```json
 * {"step":12,"epoch":1,"time":"2025-01-01T10:00:00.000Z","elapsed_s":3.2,"lr":0.0001,
 *  "loss":1.93,"ema_loss":1.41,"parts":{"rel":0.8,"gen":0.9,"loc":0.23},
 *  "samples_per_s":7.5,"batch_size":4}
 * ```
 *
 * @module
 */
import { join } from "node:path";
import { writeFileAtomic } from "../io/atomic.ts";
import { lossPlotSvg } from "./plot.ts";
import { LOG_FILE, PLOT_FILE } from "./records.ts";

/** One logged step. */
export interface LogRecord {
  /** The step, 1-based (the original's `train_i`). */
  readonly step: number;
  /** The epoch, 1-based. */
  readonly epoch: number;
  /** Wall-clock time, ISO 8601. */
  readonly time: string;
  /** Seconds since the run (or the resumed run) started. */
  readonly elapsed_s: number;
  /** The learning rate of the step. */
  readonly lr: number;
  /** The total loss that was differentiated. */
  readonly loss: number;
  /** The exponential moving average of `loss` after this step. */
  readonly ema_loss: number;
  /** Every loss part, by name. */
  readonly parts: Readonly<Record<string, number>>;
  /** Samples per second since the previous logged step. */
  readonly samples_per_s: number;
  /** Samples in this step's batch. */
  readonly batch_size: number;
}

/** Options of {@linkcode TrainLog.open}. */
export interface TrainLogOptions {
  /** Seconds between plot refreshes (default 10; 0 refreshes on every record). */
  readonly plotInterval?: number;
  /** Title of the plot. */
  readonly title?: string;
  /**
   * Gets a message when the plot cannot be written, or a torn last line was cut off (default
   * `console.warn`).
   */
  readonly warn?: (message: string) => void;
}

/** An open training log (see the module documentation). */
export class TrainLog {
  /** The JSONL file. */
  readonly path: string;
  /** The SVG file. */
  readonly plotPath: string;
  readonly #file: Deno.FsFile;
  readonly #series = new Map<string, [number, number][]>();
  readonly #interval: number;
  readonly #title: string;
  readonly #warn: (message: string) => void;
  /** Bytes of whole lines in the file. */
  #size: number;
  #lastPlot = -Infinity;
  #dirty = false;

  private constructor(
    logsDir: string,
    file: Deno.FsFile,
    size: number,
    options: TrainLogOptions,
  ) {
    this.path = join(logsDir, LOG_FILE);
    this.plotPath = join(logsDir, PLOT_FILE);
    this.#file = file;
    this.#size = size;
    this.#interval = (options.plotInterval ?? 10) * 1000;
    this.#title = options.title ?? "training losses";
    this.#warn = options.warn ?? console.warn;
  }

  /**
   * Opens (appending to) `<logsDir>/train.jsonl`; throws naming it when it cannot. A torn last
   * line (left by a process killed while writing it, or by an older version) is cut off, with
   * a warning, so the next line starts on a line of its own.
   */
  static async open(logsDir: string, options: TrainLogOptions = {}): Promise<TrainLog> {
    const path = join(logsDir, LOG_FILE);
    let file: Deno.FsFile | undefined;
    try {
      file = await Deno.open(path, { read: true, write: true, append: true, create: true });
      const size = (await file.stat()).size;
      const whole = await wholeLinesSize(file, size);
      if (whole < size) {
        await file.truncate(whole);
        (options.warn ?? console.warn)(
          `${path}: cut off a torn last line of ${size - whole} bytes (a run stopped while ` +
            "writing it)",
        );
      }
      return new TrainLog(logsDir, file, whole, options);
    } catch (error) {
      file?.close();
      throw new Error(`${path}: cannot open the training log: ${messageOf(error)}`, {
        cause: error,
      });
    }
  }

  /**
   * Appends `record` and refreshes the plot when it is due. Throws naming `train.jsonl` when
   * the line cannot be written; the file then ends with the previous line, whole.
   */
  async append(record: LogRecord): Promise<void> {
    await this.#appendLine(new TextEncoder().encode(JSON.stringify(record) + "\n"));
    const add = (name: string, v: number) => {
      let s = this.#series.get(name);
      if (s === undefined) this.#series.set(name, s = []);
      s.push([record.step, v]);
    };
    add("loss", record.loss);
    for (const [name, v] of Object.entries(record.parts)) add(name, v);
    this.#dirty = true;
    if (performance.now() - this.#lastPlot >= this.#interval) await this.flush();
  }

  /** Writes `bytes` (one line) whole, or cuts what was written of it back off and throws. */
  async #appendLine(bytes: Uint8Array): Promise<void> {
    let done = 0;
    try {
      while (done < bytes.length) done += await this.#file.write(bytes.subarray(done));
    } catch (error) {
      let repair = "";
      if (done > 0) {
        try {
          await this.#file.truncate(this.#size);
        } catch (truncateError) {
          repair = `; cutting the partial line off failed too (${messageOf(truncateError)}): ` +
            `remove the text after the last newline by hand`;
        }
      }
      throw new Error(
        `${this.path}: appending a log line failed after ${done} of ${bytes.length} bytes: ` +
          `${messageOf(error)}${repair}`,
        { cause: error },
      );
    }
    this.#size += bytes.length;
  }

  /**
   * Writes the plot now if anything was logged since the last one. A plot that cannot be
   * written is reported through `warn` (naming `losses.svg`), not thrown.
   */
  async flush(): Promise<void> {
    if (!this.#dirty) return;
    this.#dirty = false;
    this.#lastPlot = performance.now();
    const series = [...this.#series].map(([name, points]) => ({ name, points }));
    try {
      await writeFileAtomic(this.plotPath, lossPlotSvg(series, { title: this.#title }));
    } catch (error) {
      this.#warn(`the loss plot was not updated (training goes on): ${messageOf(error)}`);
    }
  }

  /** Flushes the plot and closes the file. */
  async close(): Promise<void> {
    try {
      await this.flush();
    } finally {
      this.#file.close();
    }
  }
}

/** The bytes of `file` (of `size` bytes) up to and with its last newline; 0 without one. */
async function wholeLinesSize(file: Deno.FsFile, size: number): Promise<number> {
  const chunk = new Uint8Array(1 << 16);
  for (let end = size; end > 0;) {
    const start = Math.max(0, end - chunk.length);
    const bytes = chunk.subarray(0, end - start);
    await file.seek(start, Deno.SeekMode.Start);
    for (let done = 0; done < bytes.length;) {
      const n = await file.read(bytes.subarray(done));
      if (n === null) throw new Error(`the file ended at ${start + done} of ${size} bytes`);
      done += n;
    }
    const at = bytes.lastIndexOf(0x0a);
    if (at >= 0) return start + at + 1;
    end = start;
  }
  return 0;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

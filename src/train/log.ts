/**
 * The training log: one JSON line per logged step appended to `logs/train.jsonl` (each line
 * one `write`, so a killed run leaves whole lines), and the loss curves of every logged value
 * in `logs/losses.svg`, rewritten atomically at most every `plotInterval` seconds and on
 * {@linkcode TrainLog.flush}.
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
  #lastPlot = -Infinity;
  #dirty = false;

  private constructor(logsDir: string, file: Deno.FsFile, options: TrainLogOptions) {
    this.path = join(logsDir, LOG_FILE);
    this.plotPath = join(logsDir, PLOT_FILE);
    this.#file = file;
    this.#interval = (options.plotInterval ?? 10) * 1000;
    this.#title = options.title ?? "training losses";
  }

  /** Opens (appending to) `<logsDir>/train.jsonl`. */
  static async open(logsDir: string, options: TrainLogOptions = {}): Promise<TrainLog> {
    const file = await Deno.open(join(logsDir, LOG_FILE), {
      write: true,
      append: true,
      create: true,
    });
    return new TrainLog(logsDir, file, options);
  }

  /** Appends `record` and refreshes the plot when it is due. */
  async append(record: LogRecord): Promise<void> {
    const bytes = new TextEncoder().encode(JSON.stringify(record) + "\n");
    let done = 0;
    while (done < bytes.length) done += await this.#file.write(bytes.subarray(done));
    const add = (name: string, v: number) => {
      let s = this.#series.get(name);
      if (s === undefined) this.#series.set(name, s = []);
      s.push([record.step, v]);
    };
    add("loss", record.loss);
    add("ema_loss", record.ema_loss);
    for (const [name, v] of Object.entries(record.parts)) add(name, v);
    this.#dirty = true;
    if (performance.now() - this.#lastPlot >= this.#interval) await this.flush();
  }

  /** Writes the plot now if anything was logged since the last one. */
  async flush(): Promise<void> {
    if (!this.#dirty) return;
    this.#dirty = false;
    this.#lastPlot = performance.now();
    const series = [...this.#series].map(([name, points]) => ({ name, points }));
    await writeFileAtomic(this.plotPath, lossPlotSvg(series, { title: this.#title }));
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

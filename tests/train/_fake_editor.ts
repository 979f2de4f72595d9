/**
 * A small deterministic FAKE editor for the plumbing tests of `train`, `test-edit` and
 * `infer`: a linear model trained with the project's Adam on features hashed from the
 * samples' strings, and an editing model that memorises requests. Its randomness is a function
 * of (seed, optimiser step), as the real trainer's, so a resumed run repeats the losses of an
 * uninterrupted one.
 *
 * @module
 */
import { writeJsonAtomic } from "../../src/io/atomic.ts";
import type {
  EditingModel,
  EditorEntry,
  EditorRegistry,
  Prediction,
} from "../../src/editors/api.ts";
import type {
  EditorTrainer,
  PreparedTrainBatch,
  StepLosses,
  TrainerState,
} from "../../src/train/trainer.ts";
import type { EditSample, Example } from "../../src/data/sample.ts";
import { loadCheckpoint } from "../../src/train/checkpoint.ts";
import { Adam } from "../../src/train/adam.ts";
import { stepCut } from "../../src/train/schedule.ts";
import { Rng } from "../../src/tensor/rng.ts";
import { Tensor } from "../../src/tensor/tensor.ts";

/** Feature width of the fake. */
const D = 6;

/** Knobs of the fake, for failure tests. */
export interface FakeOptions {
  /** The trainer throws (before updating) at this optimiser step (1-based). */
  readonly nanAtStep?: number;
  /** Milliseconds each `prepare` and `step` waits (to kill a run mid-way). */
  readonly delayMs?: number;
  /** Called with each `prepare` (to count them). */
  readonly onPrepare?: (batch: readonly EditSample[]) => void;
}

/** FNV-1a of a string, as a uint32. */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

function features(e: Example): number[] {
  const rng = new Rng(hash(e.prompt + "|" + e.target + "|" + (e.image ?? "")));
  return Array.from({ length: D }, () => rng.uniform() * 2 - 1);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The fake trainer. */
export class FakeTrainer implements EditorTrainer {
  readonly #w: Tensor<"f32">;
  readonly #adam: Adam;
  readonly #seed: number;
  readonly #options: FakeOptions;

  constructor(seed: number, options: FakeOptions = {}) {
    const rng = new Rng(seed);
    this.#w = new Tensor("f32", [D], Float32Array.from({ length: D }, () => rng.normal() * 0.1));
    this.#adam = new Adam({ w: this.#w });
    this.#seed = seed;
    this.#options = options;
  }

  parameters(): Record<string, Tensor<"f32">> {
    return { w: this.#w };
  }

  async prepare(batch: readonly EditSample[]): Promise<PreparedTrainBatch> {
    this.#options.onPrepare?.(batch);
    if (this.#options.delayMs) await sleep(this.#options.delayMs);
    const groups = {
      rel: batch.map((s) => s.request),
      gen: batch.map((s) => s.generality.text_rephrase),
      loc: batch.map((s) => s.locality.text_loc),
    };
    const tensors: Record<string, Tensor> = {};
    for (const [name, examples] of Object.entries(groups)) {
      tensors[`${name}.x`] = new Tensor(
        "f32",
        [examples.length, D],
        Float32Array.from(examples.flatMap(features)),
      );
      tensors[`${name}.y`] = new Tensor(
        "f32",
        [examples.length],
        Float32Array.from(examples.map((e) => (hash(e.target) % 1000) / 500 - 1)),
      );
    }
    return { tensors, info: { size: batch.length } };
  }

  async step(batch: PreparedTrainBatch, lr: number): Promise<StepLosses> {
    if (this.#options.delayMs) await sleep(this.#options.delayMs);
    const step = this.#adam.stepCount + 1;
    const noise = new Rng(this.#seed * 7919 + step); // randomness of (seed, step)
    const w = this.#w.data;
    const grad = new Float64Array(D);
    const parts: Record<string, number> = {};
    let total = 0;
    for (const name of ["rel", "gen", "loc"]) {
      const x = (batch.tensors[`${name}.x`] as Tensor<"f32">).data;
      const y = (batch.tensors[`${name}.y`] as Tensor<"f32">).data;
      let loss = 0;
      for (let b = 0; b < y.length; b++) {
        let p = 0;
        for (let j = 0; j < D; j++) p += w[j] * x[b * D + j];
        const r = p - y[b] + 0.01 * noise.normal();
        loss += (r * r) / y.length;
        for (let j = 0; j < D; j++) grad[j] += (2 * r * x[b * D + j]) / y.length;
      }
      parts[name] = step === this.#options.nanAtStep && name === "gen" ? NaN : loss;
      total += parts[name];
    }
    const bad = Object.entries(parts).find(([, v]) => !Number.isFinite(v));
    if (bad) {
      throw new Error(`non-finite loss: part "${bad[0]}" is ${bad[1]} (trainer step ${step})`);
    }
    this.#adam.step({ w: Float32Array.from(grad) }, lr);
    return { total, parts };
  }

  state(): TrainerState {
    return { weights: { w: this.#w }, adam: this.#adam.state() };
  }

  load(state: TrainerState): void {
    this.#w.data.set(state.weights.w.data);
    this.#adam.load(state.adam);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Fake token ids of a target: one id per character (ids 10..99). */
export function fakeTokens(text: string): number[] {
  return [...text].map((c) => 10 + (c.charCodeAt(0) % 90));
}

/** The fake editing model: a request's prompt answers with its target once edited. */
export class FakeModel implements EditingModel {
  readonly editorName = "fake";
  readonly modelName: string;
  #edits = new Map<string, string>();
  readonly #delayMs: number;

  constructor(modelName: string, edits: Record<string, string> = {}, delayMs = 0) {
    this.modelName = modelName;
    this.#edits = new Map(Object.entries(edits));
    this.#delayMs = delayMs;
  }

  async edit(request: Example): Promise<void> {
    if (this.#delayMs) await sleep(this.#delayMs);
    this.#edits.set(request.prompt, request.target);
  }

  restore(): Promise<void> {
    this.#edits.clear();
    return Promise.resolve();
  }

  /** The unedited answer: a hash of the prompt, the image and the position. */
  #base(e: Example, n: number): number[] {
    const h = hash(e.prompt + (e.image ?? ""));
    return Array.from({ length: n }, (_, i) => 10 + ((h >>> (i % 24)) % 90));
  }

  #answer(e: Example, n: number): number[] {
    const edited = this.#edits.get(e.prompt);
    if (edited === undefined) {
      // locality drifts a little once more than 3 edits are in: the first position changes
      const base = this.#base(e, n);
      if (this.#edits.size > 3 && n > 1) base[0] = base[0] === 10 ? 11 : 10;
      return base;
    }
    const ids = fakeTokens(edited);
    // the image rephrase is answered right except for its last token
    const out = Array.from({ length: n }, (_, i) => ids[i] ?? 10);
    if (e.image?.includes("reph") && n > 1) out[n - 1] = out[n - 1] === 10 ? 11 : 10;
    return out;
  }

  predict(examples: readonly Example[]): Promise<Prediction[]> {
    return Promise.resolve(examples.map((e) => {
      const target = fakeTokens(e.target);
      return { predicted: this.#answer(e, target.length), target };
    }));
  }

  generate(example: Example, maxNewTokens: number): Promise<number[]> {
    return Promise.resolve(this.#answer(example, maxNewTokens));
  }

  async saveState(path: string): Promise<void> {
    await writeJsonAtomic(path, { format: "fake-state", edits: Object.fromEntries(this.#edits) });
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** The fake's registry entry. */
export function fakeEntry(options: FakeOptions = {}): EditorEntry {
  return {
    description: "a fake editor for tests",
    createTrainer: (setup) =>
      Promise.resolve({
        trainer: new FakeTrainer(setup.seed, options),
        schedule: stepCut({ lr: 0.05, rate: 0.5, cuts: [6] }),
        config: { fake: true, lr: 0.05 },
      }),
    openModel: async (setup) => {
      if (setup.checkpoint !== null) {
        await loadCheckpoint(setup.checkpoint, { model: setup.checkpointModel });
      }
      let edits: Record<string, string> = {};
      if (setup.edits) {
        const json = JSON.parse(await Deno.readTextFile(setup.edits));
        if (json.format !== "fake-state") throw new Error(`${setup.edits}: not a fake state`);
        edits = json.edits;
      }
      return new FakeModel(setup.modelName, edits, options.delayMs ?? 0);
    },
  };
}

/** A registry with the fake under the name `fake`. */
export function fakeRegistry(options: FakeOptions = {}): EditorRegistry {
  return { fake: fakeEntry(options) };
}

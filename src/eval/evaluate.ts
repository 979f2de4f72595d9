/**
 * Lifelong (sequential) editing evaluation, as the original `evaluate_sequential_edit`
 * (spec §6): the samples are cut into chunks of `N` (a last incomplete chunk is left out);
 * for each chunk, on the unedited model, the locality examples are predicted (teacher-forced
 * argmax, once each); then the `N` requests are edited in order, each timed; then every
 * example of the chunk is scored on the edited model; then the model is restored. `N = 1` is
 * single editing. `selectChunk` evaluates a subset of the chunks (a shard:
 * `src/eval/shards.ts`), each exactly as in a run over all of them. The model first loads what
 * the chunk's examples need (`preload`: their images, so that the timed edits decode none). The
 * teacher-forced passes of a chunk (its locality examples before the edits, all its examples
 * after) go to the model in batches of up to `scoreBatch` examples.
 *
 * Per example: `acc` (teacher-forced token accuracy, or agreement with the pre-edit argmax for
 * locality); the request also gets `edit_time` (seconds). With `greedy`, also `greedy_acc`
 * (greedy decoding of `len(target)` tokens against the target, or against the pre-edit
 * generation for locality) and `generated`: one generation per example, which costs several
 * times the teacher-forced scoring (measured with `deno task bench:e2e`), so it is asked for.
 *
 * @module
 */
import type { EditSample, Example } from "../data/sample.ts";
import type { EditingModel, Prediction } from "../editors/api.ts";
import { agreement, greedyAccuracy, greedyAgreement, tokenAccuracy } from "./metrics.ts";
import { chunksOf, type ExampleResult, type SampleResult } from "./results.ts";

/** Options of {@linkcode evaluateSequential}. */
export interface EvaluateOptions {
  /** The model with its editor. */
  readonly model: EditingModel;
  /** The evaluation samples, in order. */
  readonly samples: readonly EditSample[];
  /** Edits per chunk (`-sen`). */
  readonly editN: number;
  /** Token ids to text, for the `predict_*` fields. */
  readonly decode: (ids: readonly number[]) => string;
  /** Called after chunk `chunk` (0-based) is edited, before scoring (e.g. to save the state). */
  readonly afterEdits?: (chunk: number) => Promise<void>;
  /** Called after each sample is scored with the samples done and the total. */
  readonly onProgress?: (done: number, total: number) => void;
  /**
   * Evaluates only the chunks (0-based indices among all chunks) this accepts, e.g. one
   * shard's (default: every chunk). The chunks are independent: the model starts each from the
   * unedited state.
   */
  readonly selectChunk?: (chunk: number) => boolean;
  /** Also score greedy decoding (`greedy_acc`, `generated`; default false). */
  readonly greedy?: boolean;
  /** The most examples per `predict` call (default {@linkcode SCORE_BATCH}). */
  readonly scoreBatch?: number;
}

/** The default number of examples per teacher-forced `predict` call of the evaluation. */
export const SCORE_BATCH = 16;

/** What {@linkcode evaluateSequential} returns. */
export interface Evaluation {
  /** The results per evaluated chunk, in order. */
  readonly chunks: SampleResult[][];
  /** The index of each evaluated chunk among all chunks. */
  readonly indices: number[];
  /** Chunks in all (evaluated or not). */
  readonly total: number;
  /** Samples left out because they do not fill a last chunk. */
  readonly dropped: number;
}

/** The scored examples of a sample, by group and kind, in one fixed order. */
function examplesOf(s: EditSample): { group: string; kind: string; example: Example }[] {
  const out = [
    { group: "reliability", kind: "request", example: s.request },
    { group: "generality", kind: "text_rephrase", example: s.generality.text_rephrase },
    { group: "generality", kind: "image_rephrase", example: s.generality.image_rephrase },
    { group: "locality", kind: "text_loc", example: s.locality.text_loc },
    { group: "locality", kind: "image_loc", example: s.locality.image_loc },
  ];
  for (const p of s.portability ?? []) {
    out.push({ group: "portability", kind: "one_hop", example: p });
  }
  return out;
}

interface Before {
  readonly predicted: readonly number[];
  readonly generated?: readonly number[];
}

/** `model.predict` of `examples` in batches of up to `batch`, in order. */
async function predictAll(
  model: EditingModel,
  examples: readonly Example[],
  batch: number,
): Promise<Prediction[]> {
  const out: Prediction[] = [];
  for (let i = 0; i < examples.length; i += batch) {
    const part = examples.slice(i, i + batch);
    const preds = await model.predict(part);
    if (preds.length !== part.length) {
      throw new Error(
        `${model.editorName}: predict returned ${preds.length} predictions for ${part.length} examples`,
      );
    }
    out.push(...preds);
  }
  return out;
}

/** Runs the evaluation (see the module documentation). */
export async function evaluateSequential(options: EvaluateOptions): Promise<Evaluation> {
  const { model, decode, editN } = options;
  const greedy = options.greedy ?? false, batch = options.scoreBatch ?? SCORE_BATCH;
  if (!Number.isInteger(batch) || batch < 1) {
    throw new Error(`evaluateSequential: scoreBatch must be an integer >= 1, got ${batch}`);
  }
  const { chunks: all, dropped } = chunksOf(options.samples, editN);
  const select = options.selectChunk ?? (() => true);
  const chunks = [...all.entries()].filter(([c]) => select(c));
  const total = chunks.length * editN;
  const out: SampleResult[][] = [];
  let done = 0;
  await model.restore();
  for (const [c, chunk] of chunks) {
    // the chunk's images, decoded before anything is timed
    await model.preload?.(chunk.flatMap((s) => examplesOf(s).map((x) => x.example)));
    // pre-edit predictions of the locality examples, once, on the unedited model
    const locs = chunk.flatMap((s) => [s.locality.text_loc, s.locality.image_loc]);
    const locPreds = await predictAll(model, locs, batch);
    const before = new Map<Example, Before>();
    for (const [i, e] of locs.entries()) {
      const predicted = locPreds[i].predicted;
      const generated = greedy ? await model.generate(e, locPreds[i].target.length) : undefined;
      before.set(e, { predicted, generated });
    }
    const editTimes: number[] = [];
    for (const s of chunk) {
      const t0 = performance.now();
      await model.edit(s.request);
      editTimes.push((performance.now() - t0) / 1000);
    }
    await options.afterEdits?.(c);
    const items = chunk.map(examplesOf);
    const preds = await predictAll(model, items.flatMap((x) => x.map((i) => i.example)), batch);
    const results: SampleResult[] = [];
    let at = 0;
    for (const [k, s] of chunk.entries()) {
      const mine = preds.slice(at, at += items[k].length);
      const scored = { editTime: editTimes[k], before, decode, greedy };
      results.push(await scoreSample(model, s, items[k], mine, scored));
      options.onProgress?.(++done, total);
    }
    await model.restore();
    out.push(results);
  }
  return { chunks: out, indices: chunks.map(([c]) => c), total: all.length, dropped };
}

/** What {@linkcode scoreSample} needs besides the sample and its predictions. */
interface Scoring {
  readonly editTime: number;
  readonly before: ReadonlyMap<Example, Before>;
  readonly decode: (ids: readonly number[]) => string;
  readonly greedy: boolean;
}

async function scoreSample(
  model: EditingModel,
  s: EditSample,
  items: ReturnType<typeof examplesOf>,
  preds: readonly Prediction[],
  { editTime, before, decode, greedy }: Scoring,
): Promise<SampleResult> {
  const result: SampleResult = {
    index: s.index,
    reliability: [],
    generality: {},
    locality: {},
    ...(s.portability ? { portability: {} } : {}),
  };
  for (const [i, { group, kind, example }] of items.entries()) {
    const p = preds[i];
    const what = `record ${s.index} ${kind}`;
    const generated = greedy ? await model.generate(example, p.target.length) : undefined;
    const row: ExampleResult = {
      image: example.image,
      prompt: example.prompt,
      target: example.target,
    };
    if (group === "locality") {
      const b = before.get(example);
      if (b === undefined) throw new Error(`${what}: no pre-edit prediction`);
      row.predict_before_edit = decode(b.predicted);
      row.predict_after_edit = decode(p.predicted);
      row.acc = wrap(what, () => agreement(p.predicted, b.predicted));
      if (generated !== undefined && b.generated !== undefined) {
        const pre = b.generated;
        row.greedy_acc = wrap(what, () => greedyAgreement(generated, pre, p.target.length));
      }
    } else {
      if (group === "reliability") row.edit_time = editTime;
      row.predict_after_edit = decode(p.predicted);
      if (generated !== undefined) row.generated = decode(generated);
      row.acc = wrap(what, () => tokenAccuracy(p));
      if (generated !== undefined) {
        row.greedy_acc = wrap(what, () => greedyAccuracy(generated, p.target));
      }
    }
    if (group === "reliability") result.reliability.push(row);
    else {
      const bucket = result[group as "generality" | "locality" | "portability"]!;
      (bucket[kind] ??= []).push(row);
    }
  }
  return result;
}

function wrap(what: string, f: () => number): number {
  try {
    return f();
  } catch (error) {
    throw new Error(`${what}: ${(error as Error).message}`);
  }
}

/**
 * The demo's VLLM: a tiny BLIP-2 OPT (the library's own model code at small sizes, `make-tiny`'s
 * layout) with a tokenizer whose words are the benchmark's, pretrained on the synthetic
 * benchmark's training questions with their true answers (`src/train/pretrain.ts`) for a fixed
 * number of steps, the learning rate decayed to a tenth by the last, on two CPU workers, then
 * saved as a Hugging Face model directory.
 *
 * The result is cached under the graph cache (`<cache>/demo-models/<key>/`), keyed by a hash of
 * the benchmark's manifest, the model sizes and the pretraining settings, with
 * `pretrain.json` (the held-out accuracy, steps, seconds) written last as the mark of a
 * complete entry; a later run with the same settings reuses it.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { graphCacheRoot } from "../../graph/compile.ts";
import { writeJsonAtomic } from "../../io/atomic.ts";
import { ANSWER_SUFFIX, LOC_SUFFIX } from "../../data/prompts.ts";
import { answeredExamples } from "../../data/synthetic/answers.ts";
import { vocabularyText } from "../../data/synthetic/questions.ts";
import type { SyntheticManifest } from "../../data/synthetic/write.ts";
import { TINY_CORPUS } from "../../models/tiny/tokenizer.ts";
import { tinyDims } from "../../models/tiny/configs.ts";
import { tinyWeights } from "../../models/tiny/weights.ts";
import { writeTinyModel } from "../../models/tiny/write.ts";
import { Tensor } from "../../tensor/tensor.ts";
import { loadVllm } from "../../models/vllm/mod.ts";
import { type PlacedVllm, placeVllm } from "../../models/vllm/place.ts";
import type { Vllm } from "../../models/vllm/vllm.ts";
import { type PretrainScore, pretrainUntil, VllmPretrainer } from "../../train/pretrain.ts";

/** The demo model's sizes and pretraining settings (all part of the cache key). */
export interface DemoModelSettings {
  /** Seed of the initial weights and of the batches. */
  readonly seed: number;
  /** Examples per step. */
  readonly batchSize: number;
  /** Steps (the learning rate decays linearly to a tenth of its peak by the last). */
  readonly maxSteps: number;
  /** Peak learning rate (Adam, beta2 0.98, linear warm-up). */
  readonly lr: number;
  /** Score the held-out questions every this many steps. */
  readonly evalEvery: number;
  /** Stop early once the held-out accuracy reaches this. */
  readonly target: number;
}

/**
 * The default settings: 600 steps to the end of the decay, scored every 100 (scoring changes
 * nothing). (Stopping once 93 % of the held-out
 * questions were right, as the demo once did, left the learning rate at two thirds of its peak
 * and the model less settled: the demo's editor then reached N = 10 Rel 0.91 and 0.95 on two
 * such models, stopped at 93 % and 95 %, against 0.98 on this one, which answers 99.4 % of the
 * held-out questions.)
 */
export const DEMO_MODEL_SETTINGS: DemoModelSettings = {
  seed: 0,
  batchSize: 64,
  maxSteps: 600,
  lr: 3e-3,
  evalEvery: 100,
  target: 1,
};

/** Version of the demo model's recipe (sizes, tokenizer, training code); part of the key. */
const RECIPE = 3;

/** The token embeddings' initial scale, relative to `make-tiny`'s (see `initialWeights`). */
const TOKEN_EMBEDDING_SCALE = 8;

/** The model's sizes (the editor config `tiny` fits them: d = 64, n_v = 8). */
const SIZES = {
  arch: "blip2-opt",
  layers: 4,
  hidden: 64,
  patchSize: 16,
  visionHidden: 64,
  crossAttentionFrequency: 1,
} as const;

/**
 * The devices pretraining shares each batch among (see `VllmPretrainer`): two single-threaded
 * CPU workers, whatever the machine, so the model comes out the same everywhere (on 2 cores a
 * step takes about 60 % of the time it takes on one two-threaded session).
 */
const PRETRAIN_DEVICES = ["cpu:0", "cpu:1"] as const;

/** The file marking a complete cache entry, with how pretraining went. */
export const PRETRAIN_FILE = "pretrain.json";

/** What `pretrain.json` holds. */
export interface PretrainRecord {
  /** The cache key. */
  readonly key: string;
  /** Teacher-forced accuracy on the held-out (eval split) questions. */
  readonly vllm_accuracy: number;
  /** Mean cross-entropy on them. */
  readonly held_out_loss: number;
  /** Steps taken. */
  readonly steps: number;
  /** Wall time of pretraining in seconds. */
  readonly seconds: number;
  /** The settings. */
  readonly settings: DemoModelSettings;
  /** The benchmark it was trained on. */
  readonly data: SyntheticManifest;
}

/** The demo model: its directory and `pretrain.json`. */
export interface DemoModel {
  /** The Hugging Face model directory. */
  readonly dir: string;
  /** How it was pretrained. */
  readonly record: PretrainRecord;
  /** Whether it came from the cache. */
  readonly cached: boolean;
}

/** Options of {@linkcode demoModel}. */
export interface DemoModelOptions {
  /** The synthetic benchmark's data root. */
  readonly dataRoot: string;
  /** Its manifest (part of the key). */
  readonly data: SyntheticManifest;
  /** Settings (default {@linkcode DEMO_MODEL_SETTINGS}). */
  readonly settings?: DemoModelSettings;
  /** Graph cache directory (default: the user's); the model goes under it. */
  readonly cacheDir?: string;
  /** Retrain even when the cache has the model. */
  readonly fresh?: boolean;
  /** Progress lines. */
  readonly print: (line: string) => void;
  /** Called after each step (e.g. for a progress bar). */
  readonly onStep?: (step: number, total: number, score: PretrainScore) => void;
}

/** The cache key of a demo model: a hash of the recipe, sizes, settings and benchmark. */
export function demoModelKey(data: SyntheticManifest, settings: DemoModelSettings): string {
  const text = JSON.stringify({ recipe: RECIPE, sizes: SIZES, settings, data });
  return createHash("sha256").update(text).digest("hex").slice(0, 16);
}

/** The tokenizer's training text: the benchmark's words first (repeated), then English. */
function corpus(): string {
  const words = vocabularyText([ANSWER_SUFFIX, LOC_SUFFIX]);
  return `${Array(20).fill(words).join(" ")} ${TINY_CORPUS}`;
}

/**
 * The pretrained demo model for the benchmark at `o.dataRoot`: from the cache when it has one
 * for these settings (unless `o.fresh`), else made and pretrained now (see the module docs).
 */
export async function demoModel(o: DemoModelOptions): Promise<DemoModel> {
  const settings = o.settings ?? DEMO_MODEL_SETTINGS;
  const key = demoModelKey(o.data, settings);
  const dir = join(graphCacheRoot(o.cacheDir), "demo-models", key);
  if (!o.fresh) {
    const record = await readRecord(dir);
    if (record?.key === key) return { dir, record, cached: true };
  }
  const { imageSize } = o.data;
  await writeTinyModel(dir, {
    ...SIZES,
    imageSize,
    weights: initialWeights(imageSize, settings.seed),
    corpus: corpus(),
    force: true,
  });
  const t0 = performance.now();
  const vllm = await loadVllm(dir);
  const placed: PlacedVllm[] = [];
  let weights;
  let result;
  try {
    for (const device of PRETRAIN_DEVICES) {
      placed.push(
        await placeVllm(vllm, { devices: [device], workers: true, cacheDir: o.cacheDir }),
      );
    }
    await checkOneTokenAnswers(vllm, o.dataRoot);
    // every image is decoded once: the VLLM's image cache holds all of the benchmark's
    const examples = await answeredExamples(o.dataRoot, "train");
    const heldOut = await answeredExamples(o.dataRoot, "eval");
    o.print(
      `pretraining the VLLM on ${examples.length} questions (${heldOut.length} held out), ` +
        `for ${settings.maxSteps} steps`,
    );
    const trainer = await VllmPretrainer.create(placed.map((p) => p.runner), { beta2: 0.98 });
    result = await pretrainUntil(trainer, {
      examples,
      heldOut,
      batchSize: settings.batchSize,
      maxSteps: settings.maxSteps,
      lr: settings.lr,
      evalEvery: settings.evalEvery,
      target: settings.target,
      seed: settings.seed,
      onStep: (step, score) => o.onStep?.(step, settings.maxSteps, score),
      onEval: (step, score) =>
        o.print(
          `  step ${step}: held-out accuracy ${(100 * score.accuracy).toFixed(1)} %, ` +
            `loss ${score.loss.toFixed(3)}`,
        ),
    });
    weights = trainer.weights();
  } finally {
    for (const p of placed) await p.close();
    vllm.close();
  }
  await writeTinyModel(dir, { ...SIZES, imageSize, corpus: corpus(), weights, force: true });
  const record: PretrainRecord = {
    key,
    vllm_accuracy: result.heldOut.accuracy,
    held_out_loss: result.heldOut.loss,
    steps: result.steps,
    seconds: (performance.now() - t0) / 1000,
    settings,
    data: o.data,
  };
  await writeJsonAtomic(join(dir, PRETRAIN_FILE), record);
  return { dir, record, cached: false };
}

/**
 * `make-tiny`'s random weights with the token embeddings scaled by
 * {@linkcode TOKEN_EMBEDDING_SCALE}. At `make-tiny`'s scale a token's embedding is small next to
 * what the layers add to the residual stream, and pretraining on answers alone never has to
 * carry the answer token itself onward: its layer-`l_e` states came out 0.97–1.00
 * cosine-similar across answers, so an expert made from an edit could not tell which answer it
 * teaches. Scaled, they are 0.8–0.95 similar, and pretraining also reaches its target in fewer
 * steps.
 */
function initialWeights(imageSize: number, seed: number): Record<string, Tensor<"f32">> {
  const weights = tinyWeights(tinyDims(SIZES.arch, { ...SIZES, imageSize }), seed);
  const key = "language_model.model.decoder.embed_tokens.weight";
  const e = weights[key];
  weights[key] = new Tensor("f32", e.shape, e.data.map((x) => x * TOKEN_EMBEDDING_SCALE));
  return weights;
}

/** `pretrain.json` of `dir`, or null. */
async function readRecord(dir: string): Promise<PretrainRecord | null> {
  try {
    return JSON.parse(await Deno.readTextFile(join(dir, PRETRAIN_FILE)));
  } catch {
    return null;
  }
}

/**
 * Throws naming the answer when an answer of the benchmark is not one token of the demo
 * tokenizer (the metrics then count tokens, not answers, and the demo would mislead).
 */
async function checkOneTokenAnswers(vllm: Vllm, dataRoot: string): Promise<void> {
  const tokenizer = await vllm.tokenizer();
  const answers = new Set((await answeredExamples(dataRoot, "eval")).map((e) => e.target));
  for (const a of answers) {
    const ids = tokenizer.encode(` ${a}`);
    if (ids.length !== 2) {
      throw new Error(`demo tokenizer: answer "${a}" is ${ids.length - 1} tokens, expected one`);
    }
  }
}

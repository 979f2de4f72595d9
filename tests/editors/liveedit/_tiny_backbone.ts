/**
 * Helpers of the LiveEdit-on-a-VLLM tests: a `make-tiny` BLIP-2 OPT backbone in a temporary
 * directory with its runner and the tiny editor config, generated images (sharp-edged colour
 * patterns written as PNG) and a small synthetic edit set in the `EditSample` layout.
 *
 * @module
 */
import { join } from "node:path";
import sharp from "sharp";
import type { EditSample, Example } from "../../../src/data/sample.ts";
import type { LiveEditConfig } from "../../../src/editors/liveedit/config.ts";
import { loadConfig } from "../../../src/editors/liveedit/mod.ts";
import { writeTinyModel } from "../../../src/models/tiny/write.ts";
import { loadVllm, type Vllm, VllmRunner } from "../../../src/models/vllm/mod.ts";
import { type EditorParams, initParams } from "../../../src/editors/liveedit/params.ts";
import { Rng } from "../../../src/tensor/rng.ts";

/** A tiny backbone, its runner, the tiny editor config and a scratch directory. */
export interface TinyBackbone {
  /** Scratch directory (removed afterwards). */
  readonly dir: string;
  /** The tiny BLIP-2 OPT. */
  readonly vllm: Vllm;
  /** Its runner (graph cache inside `dir`). */
  readonly runner: VllmRunner;
  /** `configs/tiny.json`. */
  readonly config: LiveEditConfig;
}

/** Runs `fn` with a fresh tiny BLIP-2 OPT (seed `seed`); everything is removed afterwards. */
export async function withTinyBackbone<T>(
  fn: (b: TinyBackbone) => Promise<T>,
  seed = 0,
): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "liveedit-backbone-" });
  try {
    const model = await writeTinyModel(join(dir, "tiny-blip2"), { arch: "blip2-opt", seed });
    const vllm = await loadVllm(model.dir);
    const runner = new VllmRunner(vllm, { cacheDir: join(dir, "graphs") });
    try {
      return await fn({ dir, vllm, runner, config: await loadConfig("tiny") });
    } finally {
      await runner.close();
      vllm.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * Writes a 32×32 PNG `name` into `dir`: a checkerboard of `cell`-pixel squares in two colours
 * of `rng`, shifted by `shift` pixels. Returns its path.
 */
async function writePattern(dir: string, name: string, rng: Rng, cell: number, shift: number) {
  const a = [0, 1, 2].map(() => rng.int(256)), b = [0, 1, 2].map(() => rng.int(256));
  const px = new Uint8Array(32 * 32 * 3);
  for (let y = 0; y < 32; y++) {
    for (let x = 0; x < 32; x++) {
      const on = (Math.floor((x + shift) / cell) + Math.floor(y / cell)) % 2 === 0;
      px.set(on ? a : b, (y * 32 + x) * 3);
    }
  }
  const path = join(dir, name);
  await sharp(px, { raw: { width: 32, height: 32, channels: 3 } }).png().toFile(path);
  return path;
}

/** Words that the tiny OPT tokenizer encodes (with a leading space) as one token each. */
const WORDS = [
  "kitchen",
  "station",
  "green",
  "dog",
  "cat",
  "man",
  "table",
  "street",
  "image",
  "photo",
  "answer",
];

/**
 * `n` synthetic edit samples with images written into `dir`: sample `k` asks about its own
 * pattern (prompt with `k` in it) for a one-token target; the text rephrase asks
 * differently about the same image, the image rephrase the same question about the pattern
 * shifted by one pixel with the same colours, the image locality example an unrelated
 * question about another pattern.
 */
export async function syntheticSamples(dir: string, n: number, seed = 1): Promise<EditSample[]> {
  const rng = new Rng(seed);
  const samples: EditSample[] = [];
  for (let k = 0; k < n; k++) {
    const cell = 2 + (k % 4) * 2;
    const state = rng.state();
    const image = await writePattern(dir, `edit${k}.png`, Rng.fromState(state), cell, 0);
    const rephrased = await writePattern(dir, `edit${k}_r.png`, Rng.fromState(state), cell, 1);
    rng.uniform();
    const locImage = await writePattern(dir, `loc${k}.png`, rng, 3 + (k % 3), 0);
    const target = WORDS[k % WORDS.length];
    const ex = (image: string | null, prompt: string, target: string): Example => ({
      image,
      prompt,
      target,
    });
    samples.push({
      index: k,
      request: ex(image, `what is shown in picture ${k}? the answer is`, target),
      generality: {
        text_rephrase: ex(image, `which thing is in photo ${k}? the answer is`, target),
        image_rephrase: ex(rephrased, `what is shown in picture ${k}? the answer is`, target),
      },
      locality: {
        text_loc: ex(null, `where is the cat sleeping ${k}?`, "on the sofa"),
        image_loc: ex(locImage, `what color is the car ${k}? the answer is`, "red"),
      },
    });
  }
  return samples;
}

/**
 * Untrained editor weights from `Rng(seed)` with the generators' value projections scaled by
 * `scale`, so that experts change the logits visibly (untrained residuals are ~1e-3 of H).
 */
export function strongParams(config: LiveEditConfig, seed = 0, scale = 30): EditorParams {
  const params = initParams(config.dims, new Rng(seed));
  for (const gen of ["moegen_c", "moegen_r"]) {
    const w = params[`${gen}.ca_lora.v_mlp.weight`].data;
    for (let i = 0; i < w.length; i++) w[i] *= scale;
  }
  return params;
}

/**
 * Untrained editor weights whose edits change a tiny backbone's answers: {@linkcode
 * strongParams}, with the edit extractor a copy of the input extractor, so that hard routing
 * lets a request's own expert through (untrained, it rejects every expert).
 */
export function editingParams(config: LiveEditConfig, seed = 1): EditorParams {
  const params = strongParams(config, seed);
  for (const name of Object.keys(params)) {
    const from = name.replace(/^edit_extractor\./, "inpt_extractor.");
    if (from !== name) params[name] = params[from];
  }
  return params;
}

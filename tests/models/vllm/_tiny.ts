/**
 * Helpers of the VLLM tests: tiny model directories of all three VLLMs built from the model
 * fixtures in `tests/fixtures/models` (their configs and weights, with the vocabulary resized
 * to a real tiny tokenizer written next to them), and temporary directories.
 *
 * @module
 */
import { join } from "node:path";
import { SafetensorsFile, writeSafetensors } from "../../../src/io/safetensors.ts";
import { writeLlamaTokenizer, writeOptTokenizer } from "../../../src/models/tiny/tokenizer.ts";
import {
  writeBlipPreprocessor,
  writeClipPreprocessor,
} from "../../../src/models/tiny/preprocessor.ts";
import { minigpt4ConfigJson } from "../../../src/models/vllm/minigpt4_config.ts";
import { randn } from "../../../src/tensor/create.ts";
import { Rng } from "../../../src/tensor/rng.ts";
import type { Tensor } from "../../../src/tensor/tensor.ts";
import type { VllmFamily } from "../../../src/models/vllm/vllm.ts";

/** The read-only model fixtures. */
export const FIXTURES = join(import.meta.dirname!, "../../fixtures/models");

/** Vocabulary size of the tiny OPT tokenizer (BLIP-2). */
export const OPT_VOCAB = 300;
/** Vocabulary size of the tiny LLaMA tokenizers (LLaVA with `<image>` and `<pad>`, MiniGPT-4). */
export const LLAMA_VOCAB = 400;

/** Runs `fn` with a fresh temporary directory, removed afterwards. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "liveedit-vllm-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function readAll(file: string): Promise<Record<string, Tensor>> {
  const st = await SafetensorsFile.open(file);
  try {
    return await st.readAll();
  } finally {
    st.close();
  }
}

async function fixture(family: string) {
  const dir = join(FIXTURES, family);
  return {
    config: JSON.parse(await Deno.readTextFile(join(dir, "config.json"))),
    weights: await readAll(join(dir, "model.safetensors")),
  };
}

function random(rng: Rng, shape: number[]): Tensor {
  return randn(shape, rng, { std: 1 / Math.sqrt(shape[shape.length - 1]) });
}

/**
 * Writes a tiny `family` model directory into `dir` (config.json, model.safetensors,
 * tokenizer files, preprocessor_config.json) and returns `dir`. Vision sides and decoder
 * layers come from the model fixtures; token embeddings and LM heads are random (seeded).
 */
export async function writeTinyVllm(family: VllmFamily, dir: string): Promise<string> {
  const rng = new Rng(7);
  let config: Record<string, unknown>;
  let weights: Record<string, Tensor>;
  if (family === "blip-2") {
    const f = await fixture("blip2_opt");
    config = { ...f.config, text_config: { ...f.config.text_config, vocab_size: OPT_VOCAB } };
    weights = {
      ...f.weights,
      "language_model.model.decoder.embed_tokens.weight": random(rng, [OPT_VOCAB, 32]),
    };
    await writeOptTokenizer(dir, { vocabSize: OPT_VOCAB });
    await writeBlipPreprocessor(dir, { imageSize: 32 });
  } else {
    const llava = await fixture("llava");
    const lm = Object.fromEntries(
      Object.entries(llava.weights).filter(([k]) => k.startsWith("language_model.")),
    );
    lm["language_model.model.embed_tokens.weight"] = random(rng, [LLAMA_VOCAB, 64]);
    lm["language_model.lm_head.weight"] = random(rng, [LLAMA_VOCAB, 64]);
    const text = { ...llava.config.text_config, vocab_size: LLAMA_VOCAB };
    if (family === "llava") {
      // <image> and <pad> take the last two ids
      config = { ...llava.config, text_config: text, image_token_index: LLAMA_VOCAB - 2 };
      weights = { ...llava.weights, ...lm };
      await writeLlamaTokenizer(dir, { vocabSize: LLAMA_VOCAB, imageToken: true, padToken: true });
      await writeClipPreprocessor(dir, { imageSize: 32 });
    } else {
      const blip2 = await fixture("blip2_opt");
      config = minigpt4ConfigJson({
        vision_config: blip2.config.vision_config,
        qformer_config: blip2.config.qformer_config,
        text_config: text,
        num_query_tokens: blip2.config.num_query_tokens,
      });
      const image = Object.fromEntries(
        Object.entries(blip2.weights).filter(([k]) =>
          /^(vision_model\.|qformer\.|query_tokens)/.test(k)
        ),
      );
      weights = {
        ...image,
        ...lm,
        "language_projection.weight": random(rng, [64, 32]),
        "language_projection.bias": randn([64], rng, { std: 0.1 }),
      };
      await writeLlamaTokenizer(dir, { vocabSize: LLAMA_VOCAB });
      await writeBlipPreprocessor(dir, { imageSize: 32 });
    }
  }
  await Deno.writeTextFile(join(dir, "config.json"), JSON.stringify(config, null, 1));
  await writeSafetensors(join(dir, "model.safetensors"), weights);
  return dir;
}

/** Deterministic pixel values `f32 [b, 3, size, size]`. */
export function pixels(b: number, size: number, seed = 1): Tensor<"f32"> {
  return randn([b, 3, size, size], new Rng(seed));
}

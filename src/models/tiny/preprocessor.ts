/**
 * Writers of `preprocessor_config.json` for tiny test models, with the fields and values
 * `transformers` saves for LLaVA-1.5 (`CLIPImageProcessor`) and BLIP-2 (`BlipImageProcessor`),
 * at the caller's (small) image size.
 *
 * @module
 */
import { join } from "node:path";
import { writeJsonAtomic } from "../../io/atomic.ts";
import { PREPROCESSOR_CONFIG_FILE } from "../../io/image.ts";

/** OpenAI CLIP's per-channel mean, used by both processors. */
export const CLIP_MEAN: readonly number[] = [0.48145466, 0.4578275, 0.40821073];
/** OpenAI CLIP's per-channel standard deviation, used by both processors. */
export const CLIP_STD: readonly number[] = [0.26862954, 0.26130258, 0.27577711];

const COMMON = {
  do_convert_rgb: true,
  do_normalize: true,
  do_rescale: true,
  do_resize: true,
  image_mean: CLIP_MEAN,
  image_std: CLIP_STD,
  resample: 3,
  rescale_factor: 0.00392156862745098,
};

/** Options of {@linkcode writeClipPreprocessor}. */
export interface ClipPreprocessorOptions {
  /** `size.shortest_edge` and, unless `cropSize` is given, the square `crop_size`. */
  readonly imageSize: number;
  /** Side of the square centre crop (default `imageSize`). */
  readonly cropSize?: number;
  /** `processor_class` (default `LlavaProcessor`). */
  readonly processorClass?: string;
}

/**
 * Writes `dir/preprocessor_config.json` for a `CLIPImageProcessor` as llava-hf's LLaVA-1.5
 * has it (resize shortest edge, bicubic, centre crop, CLIP mean/std), at `imageSize`.
 *
 * @example
 * ```ts
 * import { writeClipPreprocessor } from "./preprocessor.ts";
 * import { loadImageProcessor } from "../../io/image.ts";
 * const dir = await Deno.makeTempDir();
 * await writeClipPreprocessor(dir, { imageSize: 28 });
 * if ((await loadImageProcessor(dir)).outputSize?.height !== 28) throw new Error("size");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeClipPreprocessor(
  dir: string,
  options: ClipPreprocessorOptions,
): Promise<void> {
  const crop = options.cropSize ?? options.imageSize;
  checkSide("imageSize", options.imageSize);
  checkSide("cropSize", crop);
  await writeJsonAtomic(join(dir, PREPROCESSOR_CONFIG_FILE), {
    ...COMMON,
    crop_size: { height: crop, width: crop },
    do_center_crop: true,
    image_processor_type: "CLIPImageProcessor",
    processor_class: options.processorClass ?? "LlavaProcessor",
    size: { shortest_edge: options.imageSize },
  });
}

/** Options of {@linkcode writeBlipPreprocessor}. */
export interface BlipPreprocessorOptions {
  /** Side of the square the image is resized to. */
  readonly imageSize: number;
  /** `processor_class` (default `Blip2Processor`). */
  readonly processorClass?: string;
}

/**
 * Writes `dir/preprocessor_config.json` for a `BlipImageProcessor` as BLIP-2 has it (bicubic
 * resize to a square, CLIP mean/std), at `imageSize`; MiniGPT-4 directories use it too.
 */
export async function writeBlipPreprocessor(
  dir: string,
  options: BlipPreprocessorOptions,
): Promise<void> {
  checkSide("imageSize", options.imageSize);
  await writeJsonAtomic(join(dir, PREPROCESSOR_CONFIG_FILE), {
    ...COMMON,
    image_processor_type: "BlipImageProcessor",
    processor_class: options.processorClass ?? "Blip2Processor",
    size: { height: options.imageSize, width: options.imageSize },
  });
}

function checkSide(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) {
    throw new Error(`${name} must be an integer >= 1, got ${value}`);
  }
}

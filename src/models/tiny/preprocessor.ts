/**
 * Writers of the image processor settings of tiny test models, with the fields and values
 * `transformers` saves for LLaVA-1.5 (`CLIPImageProcessor`) and BLIP-2 (`BlipImageProcessor`),
 * at the caller's (small) image size: `preprocessor_config.json` in the `v4` layout, the
 * `image_processor` object of `processor_config.json` in the `v5` layout (see `layout.ts`).
 *
 * @module
 */
import { join } from "node:path";
import { writeJsonAtomic } from "../../io/atomic.ts";
import { PREPROCESSOR_CONFIG_FILE, PROCESSOR_CONFIG_FILE } from "../../io/image.ts";
import { sortKeys } from "./configs.ts";
import type { HfLayout } from "./layout.ts";

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

/** Fields of the `v5` fast image processors that the tiny processors leave unset. */
const V5_UNSET = {
  device: null,
  disable_grouping: null,
  do_pad: null,
  input_data_format: null,
  pad_size: null,
  return_tensors: null,
};

/** Options common to the writers: the layout and, for `v5`, the processor's own fields. */
export interface ProcessorLayoutOptions {
  /** `v4` writes `preprocessor_config.json`, `v5` `processor_config.json` (default `v4`). */
  readonly layout?: HfLayout;
  /**
   * The processor's fields next to `image_processor` in `processor_config.json` (`v5` only),
   * e.g. BLIP-2's `num_query_tokens`.
   */
  readonly processorFields?: Readonly<Record<string, unknown>>;
}

/** Options of {@linkcode writeClipPreprocessor}. */
export interface ClipPreprocessorOptions extends ProcessorLayoutOptions {
  /** `size.shortest_edge` and, unless `cropSize` is given, the square `crop_size`. */
  readonly imageSize: number;
  /** Side of the square centre crop (default `imageSize`). */
  readonly cropSize?: number;
  /** `processor_class` (default `LlavaProcessor`). */
  readonly processorClass?: string;
}

/**
 * Writes the settings of a `CLIPImageProcessor` as llava-hf's LLaVA-1.5 has them (resize
 * shortest edge, bicubic, centre crop, CLIP mean/std), at `imageSize`, into `dir` in
 * `options.layout`.
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
  await writeProcessor(dir, options, options.processorClass ?? "LlavaProcessor", {
    ...COMMON,
    crop_size: { height: crop, width: crop },
    do_center_crop: true,
    image_processor_type: "CLIPImageProcessor",
    size: { shortest_edge: options.imageSize },
  }, { default_to_square: false });
}

/** Options of {@linkcode writeBlipPreprocessor}. */
export interface BlipPreprocessorOptions extends ProcessorLayoutOptions {
  /** Side of the square the image is resized to. */
  readonly imageSize: number;
  /** `processor_class` (default `Blip2Processor`). */
  readonly processorClass?: string;
}

/**
 * Writes the settings of a `BlipImageProcessor` as BLIP-2 has them (bicubic resize to a
 * square, CLIP mean/std), at `imageSize`, into `dir` in `options.layout`; MiniGPT-4
 * directories use it too.
 */
export async function writeBlipPreprocessor(
  dir: string,
  options: BlipPreprocessorOptions,
): Promise<void> {
  checkSide("imageSize", options.imageSize);
  await writeProcessor(dir, options, options.processorClass ?? "Blip2Processor", {
    ...COMMON,
    image_processor_type: "BlipImageProcessor",
    size: { height: options.imageSize, width: options.imageSize },
  }, { crop_size: null, default_to_square: true, do_center_crop: null });
}

/**
 * Writes `fields` (an image processor's settings, its `image_processor_type` the slow class)
 * as `preprocessor_config.json` with `processor_class` (`v4`), or as the `image_processor` of
 * `processor_config.json`, the fast class with `v5Fields` and the unset fields, next to
 * `processor_class` and `options.processorFields` (`v5`). Keys are sorted, as `transformers`
 * writes them.
 */
async function writeProcessor(
  dir: string,
  options: ProcessorLayoutOptions,
  processorClass: string,
  fields: Record<string, unknown>,
  v5Fields: Record<string, unknown>,
): Promise<void> {
  if ((options.layout ?? "v4") === "v4") {
    await writeJsonAtomic(
      join(dir, PREPROCESSOR_CONFIG_FILE),
      sortKeys({ ...fields, processor_class: processorClass }),
    );
    return;
  }
  const imageProcessor = {
    ...fields,
    ...V5_UNSET,
    ...v5Fields,
    data_format: "channels_first",
    image_processor_type: `${fields.image_processor_type}Fast`,
  };
  await writeJsonAtomic(
    join(dir, PROCESSOR_CONFIG_FILE),
    sortKeys({
      ...options.processorFields,
      image_processor: imageProcessor,
      processor_class: processorClass,
    }),
  );
}

function checkSide(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) {
    throw new Error(`${name} must be an integer >= 1, got ${value}`);
  }
}

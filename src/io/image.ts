/**
 * Image preprocessing as the Hugging Face image processors named in a model directory do it,
 * with `sharp` (libvips) for decoding and resampling. The settings come from
 * `preprocessor_config.json` (as `transformers` 4 saves them) or, when that file is absent,
 * from the `image_processor` object of `processor_config.json` (`transformers` 5 saves the
 * processor's parts in that one file). The types understood:
 *
 * - `CLIPImageProcessor` (LLaVA-1.5): resize so the shortest edge is `size.shortest_edge` (the
 *   long edge `floor(shortest_edge * long / short)`), centre-crop `crop_size`, rescale by
 *   `rescale_factor` (1/255), normalize with `image_mean`/`image_std`.
 * - `BlipImageProcessor` (BLIP-2, and our MiniGPT-4 directories): resize to exactly
 *   `size.height × size.width`, rescale, normalize. MiniGPT-4's own `Blip2ImageEvalProcessor`
 *   (bicubic resize to a square, `ToTensor`, normalize with the CLIP mean/std) is the same.
 *
 * No padding to a square: the LiveEdit authors run LLaVA through `transformers`'
 * `LlavaProcessor` and BLIP-2 through `Blip2Processor` (see `editor/vllms_for_edit/` in
 * qizhou000/VisEdit, whose model wrappers LiveEdit shares), so this follows the HF processors,
 * not the original LLaVA repository's `expand2square`.
 *
 * Fidelity: images are decoded to 8-bit sRGB with the alpha channel dropped (PIL's
 * `convert("RGB")`; sharp additionally applies an embedded ICC profile, which PIL ignores; EXIF
 * orientation is ignored by both), then resized as 8-bit RGB like PIL does. `resample` 3
 * (bicubic) uses libvips' Catmull-Rom cubic, the same a = -0.5 kernel as PIL's antialiased
 * bicubic. Exact equality with `transformers`/PIL is not promised: when shrinking, pixels stay
 * within a few levels of a PIL-style reference (the tests bound it by 3 of 255 on smooth
 * images); when enlarging, libvips places its samples about a quarter of a source pixel away
 * from PIL's, so enlarged images differ more. Crop, rescale and normalize are exact (computed in
 * float64, stored as float32).
 *
 * @module
 */
import sharp from "sharp";
import { join } from "node:path";
import { Tensor } from "../tensor/tensor.ts";
import { checkHeader, ImageError, imageLimits, readImageFile } from "./image_file.ts";
import { isPlainObject, readOptionalJsonObject } from "./json.ts";

/** The file holding an image processor's settings (`transformers` 4). */
export const PREPROCESSOR_CONFIG_FILE = "preprocessor_config.json";
/** The file holding a processor's settings, its image processor's under `image_processor`. */
export const PROCESSOR_CONFIG_FILE = "processor_config.json";

/** The `image_processor_type` values understood (the `...Fast` variants are treated alike). */
export const IMAGE_PROCESSOR_TYPES: readonly string[] = [
  "CLIPImageProcessor",
  "CLIPImageProcessorFast",
  "BlipImageProcessor",
  "BlipImageProcessorFast",
];

/** A height and a width in pixels. */
export interface ImageSize {
  /** Rows. */
  readonly height: number;
  /** Columns. */
  readonly width: number;
}

/** How an image is resized before cropping. */
export type ResizeRule =
  | { readonly kind: "shortest_edge"; readonly shortestEdge: number }
  | { readonly kind: "exact"; readonly height: number; readonly width: number };

/** PIL resampling filters by their `resample` number, as sharp kernels. */
const KERNELS = { 0: "nearest", 1: "lanczos3", 2: "linear", 3: "cubic" } as const;

/** The validated settings of an image processor. */
export interface ImageProcessorConfig {
  /** `image_processor_type` as written, e.g. `CLIPImageProcessor`. */
  readonly type: string;
  /** The resize step, or `undefined` when `do_resize` is false. */
  readonly resize: ResizeRule | undefined;
  /** PIL filter number: 0 nearest, 1 Lanczos, 2 bilinear, 3 bicubic. */
  readonly resample: 0 | 1 | 2 | 3;
  /** The centre crop, or `undefined` when there is none (BLIP, or `do_center_crop` false). */
  readonly centerCrop: ImageSize | undefined;
  /** Factor the 0..255 pixel values are multiplied by, or `undefined` when `do_rescale` is false. */
  readonly rescaleFactor: number | undefined;
  /** Per-channel mean and std, or `undefined` when `do_normalize` is false. */
  readonly normalize:
    | { readonly mean: readonly number[]; readonly std: readonly number[] }
    | undefined;
}

/**
 * Validates the settings of an image processor (read from `file`, named in errors with the
 * field that is wrong). A field that is `null` counts as absent (`transformers`' fast
 * processors write unset fields as `null`). An unknown `image_processor_type` is an error listing the
 * known.
 */
export function parseImageProcessorConfig(
  json: Record<string, unknown>,
  file: string,
): ImageProcessorConfig {
  const fail = (field: string, problem: string) =>
    new Error(`${file}: field '${field}' ${problem}`);
  const type = json.image_processor_type ?? json.feature_extractor_type;
  if (typeof type !== "string") throw fail("image_processor_type", "is missing");
  if (!IMAGE_PROCESSOR_TYPES.includes(type)) {
    throw fail(
      "image_processor_type",
      `is ${JSON.stringify(type)}, which is not supported (supported: ${
        IMAGE_PROCESSOR_TYPES.join(", ")
      })`,
    );
  }
  const isClip = type.startsWith("CLIP");
  const flag = (name: string): boolean => {
    const v = json[name] ?? true;
    if (typeof v !== "boolean") throw fail(name, `must be true or false, got ${JSON.stringify(v)}`);
    return v;
  };
  const positiveInt = (field: string, v: unknown): number => {
    if (typeof v !== "number" || !Number.isInteger(v) || v < 1) {
      throw fail(field, `must be an integer >= 1, got ${JSON.stringify(v)}`);
    }
    return v;
  };
  const hw = (field: string, v: Record<string, unknown>): ImageSize => ({
    height: positiveInt(`${field}.height`, v.height),
    width: positiveInt(`${field}.width`, v.width),
  });

  let resize: ResizeRule | undefined;
  if (flag("do_resize")) {
    const size = json.size;
    if (size === undefined || size === null) throw fail("size", "is missing");
    if (typeof size === "number") {
      const n = positiveInt("size", size);
      resize = isClip
        ? { kind: "shortest_edge", shortestEdge: n }
        : { kind: "exact", height: n, width: n };
    } else if (isPlainObject(size) && size.shortest_edge != null) {
      if (size.longest_edge != null) throw fail("size.longest_edge", "is not supported");
      resize = {
        kind: "shortest_edge",
        shortestEdge: positiveInt("size.shortest_edge", size.shortest_edge),
      };
    } else if (isPlainObject(size)) {
      resize = { kind: "exact", ...hw("size", size) };
    } else {
      throw fail("size", `must be a number or an object, got ${JSON.stringify(size)}`);
    }
  }

  const resample = json.resample ?? 3;
  if (!(resample === 0 || resample === 1 || resample === 2 || resample === 3)) {
    throw fail(
      "resample",
      `must be 0 (nearest), 1 (lanczos), 2 (bilinear) or 3 (bicubic), got ${
        JSON.stringify(resample)
      }`,
    );
  }

  let centerCrop: ImageSize | undefined;
  if (isClip && flag("do_center_crop")) {
    const crop = json.crop_size;
    if (crop === undefined || crop === null) throw fail("crop_size", "is missing");
    if (typeof crop === "number") {
      const n = positiveInt("crop_size", crop);
      centerCrop = { height: n, width: n };
    } else if (isPlainObject(crop)) {
      centerCrop = hw("crop_size", crop);
    } else {
      throw fail("crop_size", `must be a number or an object, got ${JSON.stringify(crop)}`);
    }
  }

  let rescaleFactor: number | undefined;
  if (flag("do_rescale")) {
    const f = json.rescale_factor ?? 1 / 255;
    if (typeof f !== "number" || !Number.isFinite(f) || f <= 0) {
      throw fail("rescale_factor", `must be a positive number, got ${JSON.stringify(f)}`);
    }
    rescaleFactor = f;
  }

  let normalize: ImageProcessorConfig["normalize"];
  if (flag("do_normalize")) {
    const triple = (field: string, positive: boolean): number[] => {
      const v = json[field];
      const values = typeof v === "number" ? [v, v, v] : v;
      if (
        !Array.isArray(values) || values.length !== 3 ||
        !values.every((x) => typeof x === "number" && Number.isFinite(x) && (!positive || x > 0))
      ) {
        throw fail(
          field,
          `must be 3 ${positive ? "positive " : ""}numbers, got ${JSON.stringify(v)}`,
        );
      }
      return values as number[];
    };
    normalize = { mean: triple("image_mean", false), std: triple("image_std", true) };
  }
  return { type, resize, resample, centerCrop, rescaleFactor, normalize };
}

/**
 * The output size of `rule` for an image of `height × width` (HF's
 * `get_resize_output_image_size` with `default_to_square=False` for `shortest_edge`).
 */
export function resizedSize(rule: ResizeRule, height: number, width: number): ImageSize {
  if (rule.kind === "exact") return { height: rule.height, width: rule.width };
  const short = Math.min(height, width);
  const long = Math.max(height, width);
  const newLong = Math.floor((rule.shortestEdge * long) / short);
  return width <= height
    ? { height: newLong, width: rule.shortestEdge }
    : { height: rule.shortestEdge, width: newLong };
}

/**
 * Centre-crops HWC `pixels` (`channels` per pixel) of `from` to `to`, as HF's `center_crop`:
 * offsets `floor((from - to) / 2)`, and where the crop is larger than the image, the image is
 * first placed in a zero canvas at offset `ceil((to - from) / 2)`.
 */
export function centerCropHwc(
  pixels: Uint8Array,
  from: ImageSize,
  to: ImageSize,
  channels: number,
): Uint8Array {
  const out = new Uint8Array(to.height * to.width * channels);
  // Source row/column of output row/column 0; negative (= -ceil((to - from) / 2)) where the
  // crop is larger, which is HF's zero padding followed by the crop.
  const y0 = Math.floor((from.height - to.height) / 2);
  const x0 = Math.floor((from.width - to.width) / 2);
  for (let y = 0; y < to.height; y++) {
    const sy = y0 + y;
    if (sy < 0 || sy >= from.height) continue;
    for (let x = 0; x < to.width; x++) {
      const sx = x0 + x;
      if (sx < 0 || sx >= from.width) continue;
      const s = (sy * from.width + sx) * channels;
      out.set(pixels.subarray(s, s + channels), (y * to.width + x) * channels);
    }
  }
  return out;
}

/**
 * Preprocesses images for one model: built from a `preprocessor_config.json` by
 * {@linkcode loadImageProcessor} (or from a parsed config).
 *
 * @example
 * ```ts
 * import sharp from "sharp";
 * import { ImageProcessor, parseImageProcessorConfig } from "./image.ts";
 * const dir = await Deno.makeTempDir();
 * const raw = new Uint8Array(40 * 30 * 3).fill(128);
 * await sharp(raw, { raw: { width: 40, height: 30, channels: 3 } }).png().toFile(`${dir}/a.png`);
 * const proc = new ImageProcessor(parseImageProcessorConfig({
 *   image_processor_type: "BlipImageProcessor", size: { height: 16, width: 16 },
 *   image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5],
 * }, "preprocessor_config.json"));
 * const px = await proc.loadImage(`${dir}/a.png`);
 * if (px.shape.join(",") !== "1,3,16,16") throw new Error("shape");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class ImageProcessor {
  /** The validated settings. */
  readonly config: ImageProcessorConfig;

  /** Wraps validated settings (see {@linkcode parseImageProcessorConfig}). */
  constructor(config: ImageProcessorConfig) {
    this.config = config;
  }

  /**
   * The `[height, width]` of every output, when the settings fix it (a crop, or an exact
   * resize); `undefined` when it depends on the image's aspect ratio.
   */
  get outputSize(): ImageSize | undefined {
    const { centerCrop, resize } = this.config;
    if (centerCrop !== undefined) return centerCrop;
    return resize?.kind === "exact" ? { height: resize.height, width: resize.width } : undefined;
  }

  /**
   * Decodes the image file `path` (the types and pixel limit of `image_file.ts`: PNG, JPEG,
   * WebP by default, from the content) and preprocesses it into `pixel_values`, f32
   * `[1, 3, H, W]`. Throws an `ImageError` naming the file when it is missing, of another
   * type, too large, outside its image root, or cannot be decoded.
   */
  async loadImage(path: string): Promise<Tensor<"f32">> {
    return await this.process(path, path);
  }

  /**
   * {@linkcode ImageProcessor.loadImage} for several files, stacked into f32 `[N, 3, H, W]`.
   * Throws naming the file whose output size differs from the first's.
   */
  async loadImages(paths: readonly string[]): Promise<Tensor<"f32">> {
    if (paths.length === 0) throw new Error("loadImages: no image paths given");
    const images = await Promise.all(paths.map((p) => this.loadImage(p)));
    const [, , h, w] = images[0].shape;
    const out = new Float32Array(images.length * 3 * h * w);
    images.forEach((img, i) => {
      if (img.shape[2] !== h || img.shape[3] !== w) {
        throw new Error(
          `loadImages: ${paths[i]} preprocesses to ${img.shape[2]}x${img.shape[3]} but ${
            paths[0]
          } to ${h}x${w}; batched images need one size (set crop_size or an exact size)`,
        );
      }
      out.set(img.data, i * img.data.length);
    });
    return new Tensor("f32", [images.length, 3, h, w], out);
  }

  /**
   * Preprocesses an encoded image held in memory (`bytes`), or the file at a path; `name` is
   * used in error messages.
   */
  async process(input: string | Uint8Array, name: string): Promise<Tensor<"f32">> {
    const limits = imageLimits();
    const bytes = typeof input === "string"
      ? (await readImageFile(input, limits)).bytes
      : (await checkHeader(name, input, limits), input);
    let decoded: { data: Uint8Array; info: { width: number; height: number; channels: number } };
    try {
      decoded = await sharp(bytes, { limitInputPixels: limits.maxPixels }).removeAlpha()
        .toColourspace("srgb").raw({ depth: "uchar" }).toBuffer({ resolveWithObject: true });
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new ImageError(name, `cannot decode it: ${reason}`, { cause: error });
    }
    const { width, height, channels } = decoded.info;
    if (channels !== 3) throw new ImageError(name, `decoded to ${channels} channels, not RGB`);
    let pixels = decoded.data;
    let size: ImageSize = { height, width };
    const { resize, centerCrop } = this.config;
    if (resize !== undefined) {
      const target = resizedSize(resize, height, width);
      if (target.height < 1 || target.width < 1) {
        throw new ImageError(name, `is ${width}x${height}: too thin to resize`);
      }
      if (target.height !== height || target.width !== width) {
        pixels = await sharp(pixels, { raw: { width, height, channels: 3 } })
          .resize(target.width, target.height, {
            fit: "fill",
            kernel: KERNELS[this.config.resample],
          })
          .raw()
          .toBuffer();
        size = target;
      }
    }
    if (centerCrop !== undefined) {
      pixels = centerCropHwc(pixels, size, centerCrop, 3);
      size = centerCrop;
    }
    return new Tensor("f32", [1, 3, size.height, size.width], this.#toChw(pixels, size));
  }

  /** HWC uint8 → CHW float32 with rescale and normalize applied. */
  #toChw(pixels: Uint8Array, size: ImageSize): Float32Array {
    const plane = size.height * size.width;
    const out = new Float32Array(3 * plane);
    const scale = this.config.rescaleFactor ?? 1;
    const mean = this.config.normalize?.mean ?? [0, 0, 0];
    const std = this.config.normalize?.std ?? [1, 1, 1];
    for (let c = 0; c < 3; c++) {
      for (let i = 0; i < plane; i++) {
        out[c * plane + i] = (pixels[i * 3 + c] * scale - mean[c]) / std[c];
      }
    }
    return out;
  }
}

/**
 * The {@linkcode ImageProcessor} of model directory `dir`: from `preprocessor_config.json`,
 * else from the `image_processor` object of `processor_config.json`. Throws naming the
 * directory when neither holds one, and the file (and field) when it is malformed.
 */
export async function loadImageProcessor(dir: string): Promise<ImageProcessor> {
  const file = join(dir, PREPROCESSOR_CONFIG_FILE);
  const json = await readOptionalJsonObject(file);
  if (json !== undefined) return new ImageProcessor(parseImageProcessorConfig(json, file));
  const processorFile = join(dir, PROCESSOR_CONFIG_FILE);
  const processor = await readOptionalJsonObject(processorFile);
  if (processor === undefined) {
    throw new Error(
      `model directory ${dir} has no ${PREPROCESSOR_CONFIG_FILE} or ${PROCESSOR_CONFIG_FILE}`,
    );
  }
  if (!isPlainObject(processor.image_processor)) {
    throw new Error(
      `${processorFile}: field 'image_processor' must be an object ` +
        `(the image processor's settings), got ${JSON.stringify(processor.image_processor)}`,
    );
  }
  return new ImageProcessor(
    parseImageProcessorConfig(processor.image_processor, `${processorFile} (image_processor)`),
  );
}

/**
 * Lazy image loading for edit samples: nothing is decoded when a data set is loaded (its image
 * fields are paths); an {@linkcode ImageCache} (a bounded LRU keyed by path, in front of an
 * `ImageProcessor`) decodes a file the first time it is asked for. Each VLLM keeps one
 * (`Vllm.images`), so the images an evaluated sample asks for again are decoded once.
 *
 * @module
 */
import type { Tensor } from "../tensor/tensor.ts";

/**
 * The memory a VLLM's image cache may hold: 256 MiB of `pixel_values`. At BLIP-2's 224 x 224
 * that is 445 images; at the demo model's 32 x 32, every image of its benchmark, so training
 * decodes each image once rather than once per epoch.
 */
export const IMAGE_CACHE_BYTES = 256 * 2 ** 20;

/**
 * How many preprocessed `size` x `size` images (f32 `[1, 3, size, size]`) fit in `bytes`
 * (default {@linkcode IMAGE_CACHE_BYTES}), and at least 64 (the evaluation asks for a sample's
 * images about five times, and for a chunk's at once).
 *
 * @example
 * ```ts
 * import { imageCacheCapacity } from "./images.ts";
 * if (imageCacheCapacity(224) !== 445) throw new Error("BLIP-2");
 * ```
 */
export function imageCacheCapacity(size: number, bytes = IMAGE_CACHE_BYTES): number {
  if (!Number.isSafeInteger(size) || size < 1) {
    throw new Error(`imageCacheCapacity: image size must be an integer >= 1, got ${size}`);
  }
  return Math.max(64, Math.floor(bytes / (3 * size * size * Float32Array.BYTES_PER_ELEMENT)));
}

/** Anything that turns an image path into `pixel_values` f32 `[1, 3, H, W]`. */
export interface ImageSource {
  /** The preprocessed pixels of the image file `path`. */
  loadImage(path: string): Promise<Tensor<"f32">>;
}

/**
 * A bounded least-recently-used cache of preprocessed images, keyed by path. Concurrent
 * requests for one path share one decode; a failed load is not cached. Holds at most
 * `capacity` tensors (E-VQA's `m_loc` images, for one, repeat across many records).
 *
 * @example
 * ```ts
 * import { ImageCache } from "./images.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * let decodes = 0;
 * const source = {
 *   loadImage: (_path: string) => {
 *     decodes++;
 *     return Promise.resolve(new Tensor("f32", [1, 3, 1, 1], new Float32Array(3)));
 *   },
 * };
 * const cache = new ImageCache(source, 2);
 * await cache.loadImage("a.png");
 * await cache.loadImage("a.png");
 * if (decodes !== 1 || cache.hits !== 1) throw new Error("cached");
 * ```
 */
export class ImageCache implements ImageSource {
  /** The source asked on a miss (usually an `ImageProcessor`). */
  readonly source: ImageSource;
  /** The most tensors kept. */
  readonly capacity: number;
  /** Requests answered from the cache. */
  hits = 0;
  /** Requests that went to the source. */
  misses = 0;
  readonly #entries = new Map<string, Promise<Tensor<"f32">>>();

  /** A cache of at most `capacity` (an integer >= 1, default 256) images from `source`. */
  constructor(source: ImageSource, capacity = 256) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) {
      throw new Error(`ImageCache capacity must be an integer >= 1, got ${capacity}`);
    }
    this.source = source;
    this.capacity = capacity;
  }

  /** How many images are held (or being decoded). */
  get size(): number {
    return this.#entries.size;
  }

  /** The pixels of `path`, decoded through the source on the first request. */
  loadImage(path: string): Promise<Tensor<"f32">> {
    const held = this.#entries.get(path);
    if (held !== undefined) {
      this.hits++;
      this.#entries.delete(path); // re-insert as the most recently used
      this.#entries.set(path, held);
      return held;
    }
    this.misses++;
    const loading = this.source.loadImage(path);
    this.#entries.set(path, loading);
    loading.catch(() => {
      if (this.#entries.get(path) === loading) this.#entries.delete(path);
    });
    while (this.#entries.size > this.capacity) {
      this.#entries.delete(this.#entries.keys().next().value as string);
    }
    return loading;
  }

  /** Drops every held image. */
  clear(): void {
    this.#entries.clear();
  }
}

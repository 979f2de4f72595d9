/**
 * Lazy image loading for edit samples: nothing is decoded when a data set is loaded; an
 * {@linkcode ImageCache} (a bounded LRU keyed by path, in front of an `ImageProcessor`) decodes
 * a file with sharp the first time it is asked for, and {@linkcode loadSampleImages} fetches
 * the pixels of every example of one sample.
 *
 * @module
 */
import type { Tensor } from "../tensor/tensor.ts";
import type { EditSample, Example } from "./sample.ts";

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

/** The pixels of one example's image, `null` for a text-only example. */
export type ExamplePixels = Tensor<"f32"> | null;

/** The pixels of every example of an {@linkcode EditSample}, in its structure. */
export interface SampleImages {
  /** The request's image. */
  readonly request: ExamplePixels;
  /** The generality examples' images. */
  readonly generality: {
    readonly text_rephrase: ExamplePixels;
    readonly image_rephrase: ExamplePixels;
  };
  /** The locality examples' images (`text_loc` is always `null`). */
  readonly locality: { readonly text_loc: ExamplePixels; readonly image_loc: ExamplePixels };
  /** The portability examples' images, when the sample has portability. */
  readonly portability?: readonly ExamplePixels[];
}

/** The pixels of `example`'s image through `source`, or `null` when it has none. */
export function loadExampleImage(example: Example, source: ImageSource): Promise<ExamplePixels> {
  return example.image === null ? Promise.resolve(null) : source.loadImage(example.image);
}

/**
 * Loads the images of every example of `sample` through `source` (an `ImageProcessor`, or an
 * {@linkcode ImageCache} so that shared images are decoded once). Throws the source's error,
 * which names the file, for a missing or undecodable image.
 */
export async function loadSampleImages(
  sample: EditSample,
  source: ImageSource,
): Promise<SampleImages> {
  const load = (e: Example) => loadExampleImage(e, source);
  const { request, generality: g, locality: l, portability } = sample;
  const [req, tr, ir, tl, il, ports] = await Promise.all([
    load(request),
    load(g.text_rephrase),
    load(g.image_rephrase),
    load(l.text_loc),
    load(l.image_loc),
    portability === undefined ? undefined : Promise.all(portability.map(load)),
  ]);
  return {
    request: req,
    generality: { text_rephrase: tr, image_rephrase: ir },
    locality: { text_loc: tl, image_loc: il },
    ...(ports === undefined ? {} : { portability: ports }),
  };
}

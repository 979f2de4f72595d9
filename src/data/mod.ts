/**
 * The editing data sets (E-VQA, E-IC, VLKEB; spec §5): {@linkcode loadDataset} reads an
 * annotation file into {@linkcode EditSample}s (image fields are paths), {@linkcode ImageCache}
 * reads the pixels lazily, and {@linkcode batches} yields shuffled, resumable training batches.
 *
 * @module
 */
export * from "./batches.ts";
export * from "./datasets.ts";
export * from "./errors.ts";
export * from "./examples.ts";
export * from "./image_paths.ts";
export * from "./images.ts";
export * from "./prompts.ts";
export * from "./sample.ts";
export * from "./skipped.ts";

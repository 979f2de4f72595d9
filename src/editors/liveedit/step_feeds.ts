/**
 * What one training step of LiveEdit feeds its graph: the example groups of a batch
 * ({@linkcode TRAIN_GROUPS}), the JSON side of a prepared batch ({@linkcode PreparedInfo},
 * checked by {@linkcode preparedInfo}), the step's masks and pairs ({@linkcode stepSampling}),
 * and {@linkcode stepFeeds}: the feeds of the whole batch, or of one data-parallel replica's
 * rows.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { PreparedTrainBatch } from "../../train/trainer.ts";
import { Rng } from "../../tensor/rng.ts";
import { sliceRows, type Tensor } from "../../tensor/tensor.ts";
import { continuationInputNames, rowReps } from "./backbone.ts";
import type { EditorDims } from "./config.ts";
import {
  type ExampleGroup,
  type ExampleKind,
  packTrainBatch,
  type PairRef,
  type RowSlice,
  sampleExpertMasks,
  samplePairs,
  type TrainSequence,
} from "./train_batch.ts";
import type { Range } from "./tokens.ts";

/** The example groups of a training batch: one example of each per sample. */
export const TRAIN_GROUPS: readonly ExampleGroup[] = [
  { name: "rel", kind: "rel" },
  { name: "gen_text", kind: "gen" },
  { name: "gen_image", kind: "gen" },
  { name: "loc", kind: "loc" },
];

/** The JSON side of a prepared batch. */
export interface PreparedInfo {
  /** Samples in the batch. */
  readonly size: number;
  /** Per group: each row's four ranges and its length. */
  readonly groups: Readonly<Record<string, { ranges: Range[][]; lengths: number[] }>>;
}

/** Masks and pairs of one step (spec §4). */
export interface StepSampling {
  /** Expert masks per kind, `[b][b]` (one request per sample). */
  readonly masks: Readonly<Record<ExampleKind, readonly (readonly boolean[])[]>>;
  /** Neighbour pairs per sample. */
  readonly neighbourPairs: readonly (readonly [PairRef, PairRef])[];
  /** Prototype pairs per sample. */
  readonly prototypePairs: readonly (readonly [PairRef, PairRef])[];
}

/**
 * The masks and pairs of step `step` (1-based) for a batch of `b` samples: drawn from an
 * {@linkcode Rng} whose seed is a hash of `(seed, step)`, masks first, then pairs.
 */
export function stepSampling(seed: number, step: number, b: number): StepSampling {
  const digest = createHash("sha256").update(`liveedit-train/${seed}/${step}`).digest();
  const rng = new Rng(digest.readUInt32BE(0) * 2 ** 21 + (digest.readUInt32BE(4) >>> 11));
  const masks = sampleExpertMasks(rng, new Array(b).fill(1), new Array(b).fill(0));
  return { masks, ...samplePairs(rng, b, TRAIN_GROUPS) };
}

/** `prepared.tensors[name]`, or an error naming it. */
function tensorOf(prepared: PreparedTrainBatch, name: string): Tensor {
  const t = prepared.tensors[name];
  if (t === undefined) throw new Error(`LiveEdit prepared batch: tensor '${name}' is missing`);
  return t;
}

/** The JSON side of `prepared`, checked (errors name the field). */
export function preparedInfo(prepared: PreparedTrainBatch): PreparedInfo {
  const info = prepared.info as PreparedInfo | null;
  const size = info?.size;
  if (!Number.isSafeInteger(size) || size! < 1) {
    throw new Error(`LiveEdit prepared batch: info.size must be an integer >= 1, got ${size}`);
  }
  for (const { name } of TRAIN_GROUPS) {
    const g = info!.groups?.[name];
    if (g?.ranges?.length !== size || g?.lengths?.length !== size) {
      throw new Error(`LiveEdit prepared batch: info.groups.${name} must have ${size} rows`);
    }
  }
  return info!;
}

/**
 * The feeds of the step graph (`buildStepGraph` of `trainer.ts`) but the parameters: the batch's sequences, ranges,
 * masks and pairs (`packTrainBatch`), and per group the attention mask, labels and (locality)
 * the original logits. With `rows`, the feeds of the samples `[rows.start, rows.end)` only (a
 * data-parallel replica's part; see `packTrainBatch`). Throws naming a missing or malformed
 * tensor or field.
 */
export function stepFeeds(
  dims: EditorDims,
  prepared: PreparedTrainBatch,
  sampling: StepSampling,
  rows?: RowSlice,
): Record<string, Tensor> {
  const info = preparedInfo(prepared);
  const groups: Record<string, TrainSequence[]> = {};
  const feeds: Record<string, Tensor> = {};
  for (const { name, kind } of TRAIN_GROUPS) {
    const hidden = tensorOf(prepared, `${name}/hidden`);
    if (hidden.dtype !== "f32" || hidden.rank !== 3 || hidden.shape[0] !== info.size) {
      throw new Error(
        `LiveEdit prepared batch: '${name}/hidden' must be f32 [${info.size}, T, d], got ` +
          `${hidden.dtype}[${hidden.shape}]`,
      );
    }
    const { ranges, lengths } = info.groups[name];
    groups[name] = lengths.map((len, r) => ({
      reps: rowReps(hidden as Tensor<"f32">, r, len),
      ranges: ranges[r],
    }));
    const names = continuationInputNames(name);
    const inputs = [names.attentionMask, names.labelIds, names.labelMasks];
    if (kind === "loc") inputs.push(names.originalLogits);
    for (const input of inputs) {
      const t = tensorOf(prepared, input);
      feeds[input] = rows === undefined ? t : sliceRows(t, rows.start, rows.end);
    }
  }
  return {
    ...packTrainBatch(dims, TRAIN_GROUPS, { edits: groups.rel, groups, ...sampling }, rows),
    ...feeds,
  };
}

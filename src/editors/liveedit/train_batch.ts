/**
 * One training batch of the editor as the training graph (`losses.ts`) takes it: the groups
 * of examples and their kinds, {@linkcode packTrainBatch} (every layer-`l_e` sequence of the
 * batch stacked into `train/reps`, the token selections and the expert masks as feeds), and
 * the random parts of a step (spec §4): {@linkcode sampleExpertMasks} and
 * {@linkcode samplePairs}.
 *
 * @module
 */
import type { Rng } from "../../tensor/rng.ts";
import { Tensor } from "../../tensor/tensor.ts";
import type { EditorDims } from "./config.ts";
import {
  type Range,
  type Selection,
  selectionFeeds,
  selectionLength,
  sequenceParts,
  stackSequences,
} from "./tokens.ts";

/**
 * Graph input (i64 scalar) of the training graph: the batch index of the first pair row that
 * the graph computes (0 for the whole batch; the slice's start for a data-parallel replica).
 */
export const PAIR_ROW_OFFSET = "pairs/row_offset";

/** The three kinds of training example; a kind selects the expert mask and the lambda. */
export type ExampleKind = "rel" | "gen" | "loc";

/** A group of training examples, one per sample (e.g. `rel`, `text_rephrase`, `image_loc`). */
export interface ExampleGroup {
  /** Name; also the prefix of the group's graph inputs and outputs. */
  readonly name: string;
  /** Kind. */
  readonly kind: ExampleKind;
}

/** A layer-`l_e` sequence of the batch and its parts (pre-vision, vision, query, answer). */
export interface TrainSequence {
  /** `f32 [1, L, d]`. */
  readonly reps: Tensor<"f32">;
  /** `[4, 2]` ranges (see `sequenceParts`). */
  readonly ranges: Tensor | readonly Range[];
}

/** An example of a pair: example `index` of group `group`. */
export interface PairRef {
  /** Group name. */
  readonly group: string;
  /** Sample index in the batch. */
  readonly index: number;
}

/** One training batch of `b` samples, before packing. */
export interface TrainBatch {
  /** Every request of the batch (the experts), in order. */
  readonly edits: readonly TrainSequence[];
  /** Per group name, its `b` examples. */
  readonly groups: Readonly<Record<string, readonly TrainSequence[]>>;
  /** Expert masks per kind, `[b][edits]` (see {@linkcode sampleExpertMasks}). */
  readonly masks: Readonly<Record<ExampleKind, readonly (readonly boolean[])[]>>;
  /** Neighbour pairs, `[side0, side1]` per sample (see {@linkcode samplePairs}). */
  readonly neighbourPairs: readonly (readonly [PairRef, PairRef])[];
  /** Prototype pairs, `[side0, side1]` per sample. */
  readonly prototypePairs: readonly (readonly [PairRef, PairRef])[];
}

/**
 * Samples `[start, end)` of a batch: the part of every step that one data-parallel replica
 * computes (see {@linkcode packTrainBatch}).
 */
export interface RowSlice {
  /** First sample. */
  readonly start: number;
  /** One past the last sample. */
  readonly end: number;
}

/**
 * The feeds of the training graph for `batch` (all but the parameters and the backbone
 * loss's own inputs): the sequences stacked and zero-padded into `train/reps`, the
 * selections, the masks and `pairs/row_offset`. Throws naming the sequence or group at fault.
 *
 * With `rows`, only the samples `[rows.start, rows.end)` are computed: their examples in every
 * group (their expert-mask rows) and their pairs' first elements, against every expert and
 * every pair's second element of the batch, so the graph's loss parts are the means over
 * those rows of exactly the terms the whole batch has there; only the sequences those read
 * are packed, and every selection keeps the width it has for the whole batch.
 */
export function packTrainBatch(
  dims: EditorDims,
  groups: readonly ExampleGroup[],
  batch: TrainBatch,
  rows?: RowSlice,
): Record<string, Tensor> {
  const b = batch.neighbourPairs.length;
  const { start, end } = rows ?? { start: 0, end: b };
  if (
    !(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start < end && end <= b)
  ) {
    throw new Error(`packTrainBatch: rows [${start}, ${end}) are not a slice of a batch of ${b}`);
  }
  const inSlice = (j: number) => j >= start && j < end;
  const seqs: { seq: TrainSequence; what: string }[] = batch.edits.map((seq, i) => ({
    seq,
    what: `edit ${i}`,
  }));
  const first = new Map<string, number>();
  for (const { name } of groups) {
    const list = batch.groups[name];
    if (list === undefined) throw new Error(`packTrainBatch: no examples for group '${name}'`);
    first.set(name, seqs.length);
    list.forEach((seq, j) => seqs.push({ seq, what: `${name} example ${j}` }));
  }
  const parts = seqs.map(({ seq, what }) =>
    sequenceParts(seq.ranges, seq.reps.shape[1], `packTrainBatch: ${what}`)
  );
  // every selection over the whole batch (sequence numbers of `seqs`), with the rows it keeps
  const selections: { name: string; rows: Selection[]; keep: (row: number) => boolean }[] = [];
  const put = (name: string, rows: Selection[], keep: (row: number) => boolean = () => true) =>
    selections.push({ name, rows, keep });
  const editRows = batch.edits.map((_, s) => s);
  put("edit/query", editRows.map((s) => ({ seq: s, ranges: [parts[s].query] })));
  put(
    "edit/edit",
    editRows.map((s) => ({
      seq: s,
      ranges: [parts[s].vision, parts[s].query, parts[s].answer],
    })),
  );
  const feeds: Record<string, Tensor> = {};
  for (const { name, kind } of groups) {
    const from = first.get(name)!, n = batch.groups[name].length;
    if (n !== b) throw new Error(`packTrainBatch: group '${name}' has ${n} examples, batch ${b}`);
    const seqIds = [...Array(n).keys()].map((j) => from + j);
    put(
      `${name}/hidden`,
      seqIds.map((s) => ({ seq: s, ranges: [[0, parts[s].answer[1]]] })),
      inSlice,
    );
    put(`${name}/query`, seqIds.map((s) => ({ seq: s, ranges: [parts[s].query] })), inSlice);
    const mask = batch.masks[kind];
    if (mask.length !== b || mask.some((row) => row.length !== batch.edits.length)) {
      throw new Error(`packTrainBatch: the ${kind} mask must be [${b}][${batch.edits.length}]`);
    }
    feeds[`${name}/moe_mask`] = new Tensor(
      "bool",
      [end - start, batch.edits.length],
      Uint8Array.from(mask.slice(start, end).flat(), Number),
    );
  }
  const seqOf = ({ group, index }: PairRef) => {
    const from = first.get(group);
    if (from === undefined || !(index >= 0 && index < b)) {
      throw new Error(`packTrainBatch: pair refers to unknown example ${group}[${index}]`);
    }
    return from + index;
  };
  for (
    const [name, pairs] of [["neib", batch.neighbourPairs], ["prot", batch.prototypePairs]] as const
  ) {
    if (pairs.length !== b) {
      throw new Error(`packTrainBatch: ${name} pairs: ${pairs.length}, batch ${b}`);
    }
    for (const side of [0, 1]) {
      const seqIds = pairs.map((pair) => seqOf(pair[side]));
      const keep = side === 0 ? inSlice : () => true;
      put(
        `${name}/side${side}/query`,
        seqIds.map((s) => ({ seq: s, ranges: [parts[s].query] })),
        keep,
      );
      put(
        `${name}/side${side}/vision`,
        seqIds.map((s) => ({ seq: s, ranges: [parts[s].vision] })),
        keep,
      );
    }
  }
  // pack the sequences the kept rows read, in order
  const used = new Set<number>();
  for (const sel of selections) sel.rows.forEach((r, i) => sel.keep(i) && used.add(r.seq));
  const packed = [...used].sort((x, y) => x - y);
  const packedIndex = new Map(packed.map((s, i) => [s, i]));
  const reps = stackSequences(
    packed.map((s) => seqs[s].seq.reps),
    dims.llmMidDim,
    (i) => `packTrainBatch: ${seqs[packed[i]].what}`,
  );
  feeds["train/reps"] = reps;
  const L = reps.shape[1];
  for (const { name, rows: all, keep } of selections) {
    const width = Math.max(1, ...all.map(selectionLength));
    const kept = all.filter((_, i) => keep(i)).map((r) => ({ ...r, seq: packedIndex.get(r.seq)! }));
    Object.assign(feeds, selectionFeeds(name, kept, L, width));
  }
  feeds[PAIR_ROW_OFFSET] = new Tensor("i64", [], BigInt64Array.of(BigInt(start)));
  return feeds;
}

/**
 * Expert masks (spec §4) for `editsPerSample[j]` requests per sample, where request
 * `relEdit[j]` of sample `j` is its reliability request: reliability uses its own expert,
 * generality the experts of its sample, locality none; then, per row, a random prefix
 * `[0, n)` with `n` uniform in `[0, edits]` is switched on in each of the three masks.
 */
export function sampleExpertMasks(
  rng: Rng,
  editsPerSample: readonly number[],
  relEdit: readonly number[],
): Record<ExampleKind, boolean[][]> {
  const cols = editsPerSample.reduce((a, b) => a + b, 0);
  const masks: Record<ExampleKind, boolean[][]> = { rel: [], gen: [], loc: [] };
  let start = 0;
  editsPerSample.forEach((count, j) => {
    if (!(relEdit[j] >= 0 && relEdit[j] < count)) {
      throw new Error(
        `sampleExpertMasks: sample ${j} has ${count} requests, relEdit ${relEdit[j]}`,
      );
    }
    const row = (on: (k: number) => boolean) => [...Array(cols).keys()].map(on);
    masks.rel.push(row((k) => k === start + relEdit[j]));
    masks.gen.push(row((k) => k >= start && k < start + count));
    masks.loc.push(row(() => false));
    for (const kind of ["rel", "gen", "loc"] as const) {
      const n = rng.int(cols + 1);
      for (let k = 0; k < n; k++) masks[kind][j][k] = true;
    }
    start += count;
  });
  return masks;
}

/**
 * Neighbour and prototype pairs for a batch of `b` samples (spec §4), drawn inside each
 * sample: neighbour pairs are both from {reliability, generality} or both locality;
 * prototype pairs are one from {reliability, generality} and one locality, in random order.
 * A generality or locality example is taken from a random group of its kind.
 */
export function samplePairs(rng: Rng, b: number, groups: readonly ExampleGroup[]) {
  const ofKind = (kind: ExampleKind) => {
    const names = groups.filter((g) => g.kind === kind).map((g) => g.name);
    if (names.length === 0) throw new Error(`samplePairs: no group of kind '${kind}'`);
    return names;
  };
  const kinds = { rel: ofKind("rel"), gen: ofKind("gen"), loc: ofKind("loc") };
  const draw = (kind: ExampleKind, index: number): PairRef => ({
    group: kinds[kind][rng.int(kinds[kind].length)],
    index,
  });
  const KINDS = ["rel", "gen", "loc"] as const;
  const neighbourPairs: [PairRef, PairRef][] = [], prototypePairs: [PairRef, PairRef][] = [];
  for (let j = 0; j < b; j++) {
    const n = rng.int(3);
    const second = n === 2 ? 2 : rng.int(2);
    neighbourPairs.push([draw(KINDS[n], j), draw(KINDS[second], j)]);
  }
  for (let j = 0; j < b; j++) {
    const edited = draw(KINDS[rng.int(2)], j), loc = draw("loc", j);
    prototypePairs.push(rng.int(2) === 0 ? [edited, loc] : [loc, edited]);
  }
  return { neighbourPairs, prototypePairs };
}

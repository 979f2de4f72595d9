/**
 * Selecting parts of layer-`l_e` sequences (spec §2: pre-vision, vision, query, answer) for
 * the batched editor graphs. On the host, {@linkcode selectTokens} turns per-row token ranges
 * into an index into the flattened `[B·L, d]` hidden states and an additive key mask (the
 * feeds of a selection: {@linkcode selectionFeeds}); in the graph, {@linkcode selectInput}
 * declares them and gathers the tokens into a padded {@linkcode Tokens} batch.
 *
 * @example
 * ```ts
 * import { selectTokens } from "./tokens.ts";
 * // row 0: tokens 2..4 of sequence 0; row 1: token 1 of sequence 1 (sequences of length 6)
 * const { index, mask } = selectTokens([{ seq: 0, ranges: [[2, 5]] }, { seq: 1, ranges: [[1, 2]] }], 6);
 * if (index.shape.join() !== "2,3" || index.data[3] !== 7n || mask.data[4] === 0) {
 *   throw new Error("selectTokens");
 * }
 * ```
 *
 * @module
 */
import type { Dim, Value } from "../../graph/ir.ts";
import * as op from "../../graph/ops.ts";
import { F32_MIN } from "../../models/attention.ts";
import { toNumbers } from "../../tensor/elements.ts";
import { Tensor } from "../../tensor/tensor.ts";
import type { Tokens } from "./modules.ts";

/** A half-open token range `[start, end)`. */
export type Range = readonly [number, number];

/** The four parts of a layer-`l_e` sequence, in order (spec §2). */
export interface SequenceParts {
  /** Tokens before the image. */
  readonly preVision: Range;
  /** The image's tokens (`vt_range`). */
  readonly vision: Range;
  /** After the vision tokens up to the last prompt token. */
  readonly query: Range;
  /** The target tokens (empty at inference). */
  readonly answer: Range;
}

/**
 * Reads `ranges` (i64 or numbers `[4, 2]`: pre-vision, vision, query, answer) and checks that
 * they are consecutive, start at 0 and stay inside a sequence of `length` tokens; `what`
 * names the sequence in errors.
 */
export function sequenceParts(ranges: Tensor | readonly Range[], length: number, what: string) {
  let rows: Range[];
  if (ranges instanceof Tensor) {
    if (ranges.shape.join() !== "4,2") {
      throw new Error(`${what}: ranges must have shape [4, 2], got [${ranges.shape}]`);
    }
    const v = toNumbers(ranges);
    rows = [0, 1, 2, 3].map((i) => [v[2 * i], v[2 * i + 1]] as const);
  } else rows = [...ranges];
  if (rows.length !== 4) throw new Error(`${what}: needs 4 ranges, got ${rows.length}`);
  rows.forEach(([s, e], i) => {
    const prev = i === 0 ? 0 : rows[i - 1][1];
    if (!Number.isInteger(s) || !Number.isInteger(e) || s !== prev || e < s || e > length) {
      throw new Error(
        `${what}: range ${i} [${s}, ${e}) must start at ${prev} and end in [${s}, ${length}]`,
      );
    }
  });
  const [preVision, vision, query, answer] = rows;
  return { preVision, vision, query, answer } as SequenceParts;
}

/** The tokens one row of a selection reads: ranges of sequence `seq`, concatenated. */
export interface Selection {
  /** Which sequence (row of the `[B, L, d]` hidden states). */
  readonly seq: number;
  /** Ranges of that sequence, read in order. */
  readonly ranges: readonly Range[];
}

/** Host inputs of one token selection. */
export interface SelectionTensors {
  /** `i64 [k, T]`: flat token indices `seq·L + t` (padding slots repeat a valid index). */
  readonly index: Tensor<"i64">;
  /** `f32 [k, 1, 1, T]`: 0 for a real token, {@linkcode F32_MIN} for a padding slot. */
  readonly mask: Tensor<"f32">;
}

/**
 * The index and additive mask selecting `rows` from hidden states of `seqLen` tokens per
 * sequence; `T` is the longest row, at least `width` (default 1). A row with no tokens is all
 * padding.
 */
export function selectTokens(
  rows: readonly Selection[],
  seqLen: number,
  width = 1,
): SelectionTensors {
  const t = Math.max(1, width, ...rows.map(selectionLength));
  const index = new BigInt64Array(rows.length * t);
  const mask = new Float32Array(rows.length * t).fill(F32_MIN);
  rows.forEach((row, i) => {
    let j = 0;
    for (const [s, e] of row.ranges) {
      if (s < 0 || e > seqLen || e < s) {
        throw new Error(`selectTokens: range [${s}, ${e}) is outside a sequence of ${seqLen}`);
      }
      for (let pos = s; pos < e; pos++, j++) {
        index[i * t + j] = BigInt(row.seq * seqLen + pos);
        mask[i * t + j] = 0;
      }
    }
    const pad = j > 0 ? index[i * t] : BigInt(row.seq * seqLen);
    for (; j < t; j++) index[i * t + j] = pad;
  });
  return {
    index: new Tensor("i64", [rows.length, t], index),
    mask: new Tensor("f32", [rows.length, 1, 1, t], mask),
  };
}

/**
 * The tokens of selection `name` (`rows` rows of `<name>_len` slots) from the flat rows
 * `flat` `[N, d]` (see {@linkcode flattenTokens}), as a padded batch: declares the inputs
 * `<name>/index` (i64 `[rows, len]`) and `<name>/mask` (f32 `[rows, 1, 1, len]`) and gathers.
 */
export function selectInput(flat: Value, name: string, rows: Dim): Tokens {
  const len = `${name}_len`;
  const index = flat.graph.input(`${name}/index`, "i64", [rows, len]);
  const mask = flat.graph.input(`${name}/mask`, "f32", [rows, 1, 1, len]);
  return { reps: op.gather(flat, index, 0), mask };
}

/** The number of tokens `row` reads. */
export function selectionLength(row: Selection): number {
  return row.ranges.reduce((n, [s, e]) => n + e - s, 0);
}

/**
 * The feeds of selection `name` (see {@linkcode selectInput}): `rows` of sequences of
 * `seqLen` tokens, padded to at least `width` slots ({@linkcode selectTokens}).
 */
export function selectionFeeds(
  name: string,
  rows: readonly Selection[],
  seqLen: number,
  width?: number,
): Record<string, Tensor> {
  const sel = selectTokens(rows, seqLen, width);
  return { [`${name}/index`]: sel.index, [`${name}/mask`]: sel.mask };
}

/**
 * `[B, L, d] → [B·L, d]` (the flat rows that selection indices point into). The reshape is
 * emitted with a runtime `-1`, since `B·L` has no name among the input's dims.
 */
export function flattenTokens(hidden: Value): Value {
  const [b, l, d] = hidden.shape;
  if (typeof d !== "number") {
    throw new Error(`flattenTokens: width of ${hidden.describe()} must be static`);
  }
  return op.emit("Reshape", [hidden, op.i64s(hidden.graph, [-1, d])], {}, hidden.dtype, [
    `${b}*${l}`,
    d,
  ]);
}

/**
 * Stacks sequences `f32 [1, L_i, d]` into one zero-padded `[S, max L_i, d]` tensor; `what`
 * names a sequence in errors (`what(i)`).
 */
export function stackSequences(
  seqs: readonly Tensor<"f32">[],
  d: number,
  what: (i: number) => string,
): Tensor<"f32"> {
  seqs.forEach((r, i) => {
    if (r.rank !== 3 || r.shape[0] !== 1 || r.shape[2] !== d) {
      throw new Error(`${what(i)}: reps must be f32[1, L, ${d}], got [${r.shape}]`);
    }
  });
  const L = Math.max(1, ...seqs.map((r) => r.shape[1]));
  const out = new Float32Array(seqs.length * L * d);
  seqs.forEach((r, i) => out.set(r.data, i * L * d));
  return new Tensor("f32", [seqs.length, L, d], out);
}

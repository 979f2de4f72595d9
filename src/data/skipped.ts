/**
 * Records left out of a data set (`--skip-bad-records`, `--skip-missing-images`): which ones,
 * why, and the data set without them.
 *
 * @module
 */
import { DataError } from "./errors.ts";
import type { EditSample } from "./sample.ts";

/** A record left out, and why. */
export interface SkippedRecord {
  /** Its index in the annotation file. */
  readonly index: number;
  /** Why, naming the field (the message of a {@linkcode DataError} without the file). */
  readonly reason: string;
}

/** How many skipped records a warning lists. */
const SHOW = 10;

/** The {@linkcode SkippedRecord} of a {@linkcode DataError} about one record. */
export function skippedOf(error: DataError): SkippedRecord {
  if (error.record === undefined) throw error;
  const field = error.field === undefined ? "" : `field '${error.field}' `;
  return { index: error.record, reason: `${field}${error.problem}` };
}

/** A data set with some records taken out. */
export interface Kept {
  /** The samples left, in file order. */
  readonly samples: readonly EditSample[];
  /** Every record skipped so far (earlier ones first), one entry per record. */
  readonly skipped: readonly SkippedRecord[];
  /** One line saying how many were skipped now, and which (the first few). */
  readonly warning: string | undefined;
}

/**
 * Takes the records `drop` out of `samples` (from annotation file `file`, which had `total`
 * records), adding them to `before`. Throws a {@linkcode DataError} when no record is left.
 *
 * @example
 * ```ts
 * import { dropRecords } from "./skipped.ts";
 * import type { EditSample } from "./sample.ts";
 * const samples = [0, 1, 2].map((index) => ({ index }) as EditSample);
 * const kept = dropRecords("f.json", 3, samples, [], [{ index: 1, reason: "field 'alt' is empty" }]);
 * if (kept.samples.length !== 2 || !kept.warning?.startsWith("skipped 1 of 3")) throw new Error();
 * ```
 */
export function dropRecords(
  file: string,
  total: number,
  samples: readonly EditSample[],
  before: readonly SkippedRecord[],
  drop: readonly SkippedRecord[],
): Kept {
  const byIndex = new Map<number, SkippedRecord>();
  for (const s of drop) if (!byIndex.has(s.index)) byIndex.set(s.index, s);
  if (byIndex.size === 0) return { samples, skipped: before, warning: undefined };
  const kept = samples.filter((s) => !byIndex.has(s.index));
  const now = [...byIndex.values()].sort((a, b) => a.index - b.index);
  const list = now.slice(0, SHOW).map((s) => `record ${s.index}: ${s.reason}`).join("; ");
  const more = now.length > SHOW ? `; ... (${now.length - SHOW} more)` : "";
  const warning = `skipped ${now.length} of ${total} records of ${file}: ${list}${more}`;
  if (kept.length === 0) throw new DataError(file, {}, `${warning}; no record is left`);
  return { samples: kept, skipped: [...before, ...now], warning };
}

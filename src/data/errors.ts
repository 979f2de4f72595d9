/**
 * {@linkcode DataError}: a problem with a data set file, naming the file and, where one is at
 * fault, the record (its index in the file) and the field.
 *
 * @module
 */

/** Where in a data file a problem is. */
export interface DataLocation {
  /** The record's index in the file. */
  readonly record?: number;
  /** The field, e.g. `alt` or `port_new[0].port_a`. */
  readonly field?: string;
}

/**
 * A problem with a data file: `<file>: record <i>: field '<f>' <problem>` (the field part only
 * where known), or `data file <file>: <problem>` for the file as a whole.
 *
 * @example
 * ```ts
 * import { DataError } from "./errors.ts";
 * const e = new DataError("vqa_train.json", { record: 3, field: "alt" }, "is empty");
 * if (e.message !== "vqa_train.json: record 3: field 'alt' is empty") throw new Error(e.message);
 * ```
 */
export class DataError extends Error {
  /** The data file. */
  readonly file: string;
  /** The record's index in the file, when one is at fault. */
  readonly record: number | undefined;
  /** The field at fault, when one is. */
  readonly field: string | undefined;
  /** The problem alone, without the location. */
  readonly problem: string;

  /** Builds the message from the location and `problem`. */
  constructor(file: string, at: DataLocation, problem: string, options?: ErrorOptions) {
    const where = at.record === undefined ? `data file ${file}` : `${file}: record ${at.record}`;
    super(`${where}: ${at.field === undefined ? "" : `field '${at.field}' `}${problem}`, options);
    this.name = "DataError";
    this.file = file;
    this.record = at.record;
    this.field = at.field;
    this.problem = problem;
  }
}

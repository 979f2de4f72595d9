/**
 * Edit samples (spec §5): one annotation record of E-VQA, E-IC or VLKEB becomes a request,
 * two generality examples, two locality examples and, for VLKEB's one-hop file, portability
 * examples. {@linkcode parseRecord} validates a raw record (every field named in errors with
 * the file and record index) and applies the data set's {@linkcode PromptRules}.
 *
 * @module
 */
import { isPlainObject } from "../io/json.ts";
import { DataError } from "./errors.ts";
import { type ImageRef, resolveImagePath } from "./image_paths.ts";
import type { PromptRules } from "./prompts.ts";

/** One prompt/target pair, with the image it is asked about (a path), or `null` for none. */
export interface Example {
  /** The image file, resolved under the image root; `null` for a text-only example. */
  readonly image: string | null;
  /** The prompt with the data set's suffix applied (spec §5). */
  readonly prompt: string;
  /** The target as written in the JSON (no leading space added; see `withLeadingSpace`). */
  readonly target: string;
}

/**
 * A VLKEB one-hop portability example (`port_new`): the hop question `port_q` about the
 * request's image, answered by `port_a`; plus the text question `port_edit_q` /
 * `port_edit_a` about the new entity, kept for reference.
 */
export interface PortabilityExample extends Example {
  /** `port_edit_q`: the hop asked about the edited answer directly, in text. */
  readonly editQuestion: string;
  /** `port_edit_a`: its answer. */
  readonly editAnswer: string;
}

/** One edit: the request and the examples that score it (spec §5). */
export interface EditSample {
  /** The record's index in its annotation file. */
  readonly index: number;
  /** (image, src, alt). */
  readonly request: Example;
  /** Generality: the text rephrase (image, rephrase, alt) and the image rephrase
   * (image_rephrase, src, alt). */
  readonly generality: { readonly text_rephrase: Example; readonly image_rephrase: Example };
  /** Locality: text (no image, loc, loc_ans) and image (m_loc, m_loc_q, m_loc_a). */
  readonly locality: { readonly text_loc: Example; readonly image_loc: Example };
  /** VLKEB one-hop portability (from `port_new`); absent when the record has none. */
  readonly portability?: readonly PortabilityExample[];
}

/** The string fields every record must have (spec §5). */
export const RECORD_FIELDS: readonly string[] = [
  "src",
  "rephrase",
  "alt",
  "image",
  "image_rephrase",
  "loc",
  "loc_ans",
  "m_loc",
  "m_loc_q",
  "m_loc_a",
];

/** The image path fields of a record. */
export const IMAGE_FIELDS: readonly string[] = ["image", "image_rephrase", "m_loc"];

/** The string fields of each `port_new` entry. */
export const PORTABILITY_FIELDS: readonly string[] = [
  "port_q",
  "port_a",
  "port_edit_q",
  "port_edit_a",
];

/** How {@linkcode parseRecord} reads a record. */
export interface RecordContext {
  /** The annotation file, for errors. */
  readonly file: string;
  /** The record's index in it. */
  readonly index: number;
  /** The data set's prompt rules. */
  readonly rules: PromptRules;
  /** The directory the relative image paths are resolved under. */
  readonly imageRoot: string;
  /** Whether `port_new` must be present (VLKEB's one-hop file); otherwise parsed if present. */
  readonly portability: "required" | "optional";
}

/** A parsed record and the image files it references (for the existence check). */
export interface ParsedRecord {
  /** The sample. */
  readonly sample: EditSample;
  /** Every image reference, with its field. */
  readonly images: readonly ImageRef[];
}

/**
 * Validates the raw JSON `record` and builds its {@linkcode EditSample}. Throws a
 * {@linkcode DataError} `FILE: record I: field 'F' is missing` (or has the wrong type, or is
 * empty: every prompt, target and answer must have text), and the path errors of
 * {@linkcode resolveImagePath}.
 */
export function parseRecord(record: unknown, ctx: RecordContext): ParsedRecord {
  const { file, index, rules, imageRoot } = ctx;
  const fail = (field: string | undefined, problem: string) =>
    new DataError(file, { record: index, field }, problem);
  if (!isPlainObject(record)) {
    throw fail(undefined, `must be a JSON object, got ${describe(record)}`);
  }
  const str = (obj: Record<string, unknown>, field: string, name = field): string => {
    const v = obj[field];
    if (v === undefined) throw fail(name, "is missing");
    if (typeof v !== "string") throw fail(name, `must be a string, got ${describe(v)}`);
    if (v.trim() === "" && !IMAGE_FIELDS.includes(field)) {
      throw fail(name, `is empty${v === "" ? "" : ` (only white space: ${JSON.stringify(v)})`}`);
    }
    return v;
  };
  const f = Object.fromEntries(RECORD_FIELDS.map((k) => [k, str(record, k)]));
  const images: ImageRef[] = [];
  const image = (field: string): string => {
    const path = resolveImagePath(imageRoot, f[field], file, index, field);
    images.push({ index, field, relative: f[field], path });
    return path;
  };
  const img = image("image");
  const sample: EditSample = {
    index,
    request: { image: img, prompt: rules.edit(f.src), target: f.alt },
    generality: {
      text_rephrase: { image: img, prompt: rules.edit(f.rephrase), target: f.alt },
      image_rephrase: { image: image("image_rephrase"), prompt: rules.edit(f.src), target: f.alt },
    },
    locality: {
      text_loc: { image: null, prompt: rules.loc(f.loc), target: f.loc_ans },
      image_loc: { image: image("m_loc"), prompt: rules.imageLoc(f.m_loc_q), target: f.m_loc_a },
    },
  };
  const ports = record.port_new;
  if (ports === undefined) {
    if (ctx.portability === "required") throw fail("port_new", "is missing");
    return { sample, images };
  }
  if (!Array.isArray(ports)) throw fail("port_new", `must be an array, got ${describe(ports)}`);
  const portability = ports.map((p, j): PortabilityExample => {
    const name = `port_new[${j}]`;
    if (!isPlainObject(p)) throw fail(name, `must be a JSON object, got ${describe(p)}`);
    const [q, a, eq, ea] = PORTABILITY_FIELDS.map((k) => str(p, k, `${name}.${k}`));
    return { image: img, prompt: q, target: a, editQuestion: eq, editAnswer: ea };
  });
  return { sample: { ...sample, portability }, images };
}

/** A short description of a JSON value's type for errors. */
function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object") return "an object";
  const text = JSON.stringify(v);
  return `${typeof v} ${text.length > 60 ? text.slice(0, 57) + "..." : text}`;
}

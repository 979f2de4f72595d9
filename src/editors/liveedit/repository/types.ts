/**
 * The shapes and records an expert repository stores: the dimensions of one expert, an edit
 * request, and the four expert tensors the editor builds for one edit.
 *
 * @module
 */
import { Tensor } from "../../../tensor/tensor.ts";

/**
 * Dimensions of one expert: `eqr` and `evr` are `[e, m]`, `C` and `R` are `[r, d]` (the
 * spec's `e` extraction queries, module dim `m`, LoRA rank `r`, hidden size `d`).
 */
export interface ExpertDims {
  /** Number of extraction queries (`eqe_n`, 4 in the paper). */
  readonly e: number;
  /** Editor module dim (1024 in the paper). */
  readonly m: number;
  /** LoRA rank (4 in the paper). */
  readonly r: number;
  /** Hidden size of the language model (2560 or 4096). */
  readonly d: number;
}

/** The edit a user asked for. At least the prompt and target; the image by path and/or hash. */
export interface EditRequest {
  /** The prompt (question or caption prefix) as given to the editor. */
  readonly prompt: string;
  /** The answer the edited model should give. */
  readonly target: string;
  /** Path of the image, as the user gave it (not resolved, not checked). */
  readonly image?: string;
  /** Lower-case hex sha256 of the image file's bytes, to recognise the image later. */
  readonly imageSha256?: string;
}

/**
 * The four tensors of one expert (spec §2): `eqr` and `evr` `[e, m]` route to it, `C` and `R`
 * `[r, d]` are its low-rank factors. Inputs may also carry a leading batch dim of 1
 * (`[1, e, m]`, as the editor modules produce them).
 */
export interface ExpertTensors {
  /** Text routing feature (`edit_extractor.extract_query`), `[e, m]`. */
  readonly eqr: Tensor<"f32">;
  /** Vision routing feature (`edit_extractor.extract_vision`), `[e, m]`. */
  readonly evr: Tensor<"f32">;
  /** First low-rank factor (`moegen_c`), `[r, d]`. */
  readonly C: Tensor<"f32">;
  /** Second low-rank factor (`moegen_r`), `[r, d]`. */
  readonly R: Tensor<"f32">;
}

/** One edit to store: the request and the expert built from it. */
export interface Edit extends ExpertTensors {
  /** What the user asked for. */
  readonly request: EditRequest;
}

/** What the repository knows about a stored edit besides its tensors. */
export interface ExpertInfo {
  /** Edit id: assigned at append, increasing, never reused within a repository. */
  readonly id: number;
  /** When the edit was acknowledged, ISO 8601 (UTC). */
  readonly time: string;
  /** The request. */
  readonly request: EditRequest;
}

/** A stored edit: its id, time, request and tensors (shaped `[e, m]` / `[r, d]`). */
export interface StoredExpert extends ExpertInfo, ExpertTensors {}

/** The tensor names of an expert, in their on-disk order. */
export const EXPERT_TENSORS = ["eqr", "evr", "C", "R"] as const;

/** Name of one of the four expert tensors. */
export type ExpertTensorName = typeof EXPERT_TENSORS[number];

/** The shape of expert tensor `name` for `dims`: `[e, m]` or `[r, d]`. */
export function expertShape(dims: ExpertDims, name: ExpertTensorName): [number, number] {
  return name === "eqr" || name === "evr" ? [dims.e, dims.m] : [dims.r, dims.d];
}

/** Number of f32 elements in one expert: `2·e·m + 2·r·d`. */
export function expertElements(dims: ExpertDims): number {
  return 2 * dims.e * dims.m + 2 * dims.r * dims.d;
}

/** Checks that `dims` are four positive integers; `where` names the source in the error. */
export function checkDims(dims: unknown, where: string): ExpertDims {
  const d = dims as Record<string, unknown> | null;
  for (const k of ["e", "m", "r", "d"]) {
    const v = d?.[k];
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1) {
      throw new Error(`${where}: dims.${k} must be an integer >= 1, got ${JSON.stringify(v)}`);
    }
  }
  const { e, m, r, d: hidden } = d as unknown as ExpertDims;
  return { e, m, r, d: hidden };
}

/**
 * Checks `request` (prompt and target strings; image a string; imageSha256 64 hex digits) and
 * returns a plain copy with only the known fields. `where` names the source in the error.
 */
export function checkRequest(request: unknown, where: string): EditRequest {
  const q = request as Record<string, unknown> | null;
  if (typeof q !== "object" || q === null) {
    throw new Error(`${where}: request must be an object, got ${JSON.stringify(request)}`);
  }
  for (const k of ["prompt", "target"]) {
    if (typeof q[k] !== "string") {
      throw new Error(`${where}: request.${k} must be a string, got ${JSON.stringify(q[k])}`);
    }
  }
  if (q.image !== undefined && typeof q.image !== "string") {
    throw new Error(
      `${where}: request.image must be a string path, got ${JSON.stringify(q.image)}`,
    );
  }
  const sha = q.imageSha256;
  if (sha !== undefined && (typeof sha !== "string" || !/^[0-9a-f]{64}$/.test(sha))) {
    throw new Error(
      `${where}: request.imageSha256 must be 64 lower-case hex digits, got ${JSON.stringify(sha)}`,
    );
  }
  const out: { -readonly [K in keyof EditRequest]: EditRequest[K] } = {
    prompt: q.prompt as string,
    target: q.target as string,
  };
  if (q.image !== undefined) out.image = q.image as string;
  if (sha !== undefined) out.imageSha256 = sha as string;
  return out;
}

/**
 * Checks that `t` is an f32 tensor of `shape` (or `[1, ...shape]`) and returns its data.
 * `where` names the edit and tensor in the error.
 */
export function expertData(
  t: unknown,
  shape: readonly number[],
  where: string,
): Float32Array {
  if (!(t instanceof Tensor) || t.dtype !== "f32") {
    throw new Error(`${where} must be an f32 Tensor of shape [${shape.join(", ")}]`);
  }
  const s = t.shape.length === shape.length + 1 && t.shape[0] === 1 ? t.shape.slice(1) : t.shape;
  if (s.length !== shape.length || s.some((x, i) => x !== shape[i])) {
    throw new Error(
      `${where} has shape [${t.shape.join(", ")}], expected [${shape.join(", ")}] (or [1, ${
        shape.join(", ")
      }])`,
    );
  }
  return t.data as Float32Array;
}

/** The lower-case hex sha256 of `bytes` (for {@linkcode EditRequest.imageSha256}). */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The editor's weights as external initializers: the inference graphs (editing, routing, the
 * residual) point into a safetensors file that holds the weights, as the backbones' graphs point
 * into their checkpoints, so ONNX Runtime maps the bytes once per session, folds what is
 * constant (a constant query times its key weights) and prepacks the weights of its matrix
 * products, instead of taking every weight as a feed on every run (where it transposes each
 * one anew, and a GPU copies it over).
 *
 * - {@linkcode openParamFile}: the weights in a file that already holds them (a training
 *   checkpoint's tensors, an editor-state file, a converted checkpoint of the authors).
 * - {@linkcode cacheParamFile}: weights that live only in memory (freshly initialised, or made
 *   by a test) are written once into the graph cache's `weights/` folder as
 *   `<sha256 of the weights>.safetensors` (atomically; an existing file of that name is used
 *   as is).
 * - {@linkcode paramExternals}: the parameters of a graph as external initializers into the
 *   file (training feeds them instead: `paramInputs`).
 *
 * @module
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import type { ExternalData, Graph } from "../../graph/ir.ts";
import { cachedWeightsDir } from "../../graph/compile.ts";
import { SafetensorsFile, writeSafetensors } from "../../io/safetensors.ts";
import type { EditorDims } from "./config.ts";
import { checkParams, type EditorParams, paramSpecs, type ParamValues } from "./params.ts";

/** A safetensors file holding an editor's weights, and where each weight's bytes are in it. */
export interface ParamFile {
  /** The file. */
  readonly path: string;
  /** Each parameter's bytes in the file, by state-dict name. */
  readonly tensors: ReadonlyMap<string, ExternalData>;
}

/**
 * The weights of an editor of `dims` in the safetensors file `file`; other tensors of the
 * file (Adam moments, experts) are ignored. Throws naming the file and the weight that is
 * missing, not f32 or of the wrong shape. Reads the header only: the file must hold the
 * values the editor's host tensors have (it is where they were read from).
 */
export async function openParamFile(file: string, dims: EditorDims): Promise<ParamFile> {
  const f = await SafetensorsFile.open(file);
  try {
    const tensors = new Map<string, ExternalData>();
    for (const { name, shape } of paramSpecs(dims)) {
      if (!f.has(name)) throw new Error(`${file}: parameter '${name}' is missing`);
      const info = f.info(name);
      if (info.dtype !== "f32" || info.shape.join() !== shape.join()) {
        throw new Error(
          `${file}: parameter '${name}' is ${info.dtype}[${info.shape}], expected f32[${shape}]`,
        );
      }
      tensors.set(name, { path: file, offset: info.fileOffset, length: info.byteLength });
    }
    return { path: path.resolve(file), tensors };
  } finally {
    f.close();
  }
}

/**
 * The file of weights `params` (checked against `dims`) in the graph cache's folder of weight
 * copies (`cachedWeightsDir(cacheDir)`), written atomically the first time these exact weights
 * are seen (the name is the SHA-256 of their names, shapes and bytes).
 */
export async function cacheParamFile(
  params: EditorParams,
  dims: EditorDims,
  cacheDir?: string,
): Promise<ParamFile> {
  checkParams(params, dims, "editor weights");
  const hash = createHash("sha256");
  for (const { name, shape } of paramSpecs(dims)) {
    const d = params[name].data;
    hash.update(`${name}:${shape.join("x")}\n`);
    hash.update(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
  }
  const dir = cachedWeightsDir(cacheDir);
  const file = path.join(dir, `${hash.digest("hex")}.safetensors`);
  try {
    return await openParamFile(file, dims);
  } catch {
    // not written yet (or unreadable): write it
  }
  await fs.mkdir(dir, { recursive: true });
  await writeSafetensors(file, params, { format: "liveedit-editor-weights" });
  return await openParamFile(file, dims);
}

/** Every parameter of `dims` as an external initializer of `g` pointing into `file`. */
export function paramExternals(g: Graph, dims: EditorDims, file: ParamFile): ParamValues {
  return Object.fromEntries(
    paramSpecs(dims).map((s) => {
      const data = file.tensors.get(s.name);
      if (data === undefined) throw new Error(`${file.path}: parameter '${s.name}' is missing`);
      return [s.name, g.external(s.name, "f32", s.shape, data)];
    }),
  );
}

/**
 * Reading a session's outputs with their dtype checked: {@linkcode f32}`(out, "logits")`
 * instead of `out.logits as Tensor<"f32">`. Sessions label the records they return
 * ({@linkcode labelOutputs}), so an output that is missing or of another dtype is an error
 * naming the session, its device and the output.
 *
 * @example
 * ```ts
 * import { f32, labelOutputs } from "./outputs.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * const out = labelOutputs("session 'mm' on cpu", {
 *   y: new Tensor("f32", [1], Float32Array.of(2)),
 * });
 * if (f32(out, "y").data[0] !== 2) throw new Error("y");
 * ```
 *
 * @module
 */
import type { DType } from "../tensor/dtype.ts";
import type { Tensor } from "../tensor/tensor.ts";

const LABEL = Symbol("session label");

/**
 * Marks `out` as the outputs of the session `label` (e.g. `"session 'mm' on cpu"`), for the
 * errors of {@linkcode output}; returns `out` (the mark is not enumerable: spreading or
 * iterating `out` sees only the outputs).
 */
export function labelOutputs(
  label: string,
  out: Record<string, Tensor>,
): Record<string, Tensor> {
  Object.defineProperty(out, LABEL, { value: label, enumerable: false });
  return out;
}

/**
 * Output `name` of `out` as a tensor of `dtype`; throws naming the session (when `out` came
 * from one) and the output when it is missing or of another dtype.
 */
export function output<D extends DType>(
  out: Readonly<Record<string, Tensor>>,
  name: string,
  dtype: D,
): Tensor<D> {
  const t = out[name];
  const where = () => {
    const label = (out as { [LABEL]?: string })[LABEL];
    return label === undefined ? `output '${name}'` : `${label}: output '${name}'`;
  };
  if (t === undefined) {
    throw new Error(`${where()} is missing; the outputs are ${Object.keys(out).join(", ")}`);
  }
  if (t.dtype !== dtype) {
    throw new Error(`${where()} is ${t.dtype}[${t.shape.join(", ")}], expected ${dtype}`);
  }
  return t as Tensor<D>;
}

/** Output `name` of `out` as an f32 tensor (see {@linkcode output}). */
export function f32(out: Readonly<Record<string, Tensor>>, name: string): Tensor<"f32"> {
  return output(out, name, "f32");
}

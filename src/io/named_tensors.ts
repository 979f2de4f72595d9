/**
 * Validation of named f32 tensors read from a file against the names and shapes a model
 * expects, with errors naming the file and the key.
 *
 * @module
 */
import type { Tensor } from "../tensor/tensor.ts";

/** Expected shape per tensor name; a {@linkcode Tensor} record qualifies as it is. */
export type ExpectedShapes = Readonly<Record<string, { readonly shape: readonly number[] }>>;

/**
 * Checks that `tensors` (read from `file`) are all f32 and, when `expected` is given, that
 * they are exactly its names with its shapes. Throws naming `file` and the first key at fault.
 */
export function checkNamedTensors(
  file: string,
  tensors: Readonly<Record<string, Tensor>>,
  expected?: ExpectedShapes,
): Record<string, Tensor<"f32">> {
  for (const [key, t] of Object.entries(tensors)) {
    if (t.dtype !== "f32") throw new Error(`${file}: tensor "${key}" is ${t.dtype}, expected f32`);
  }
  if (expected !== undefined) {
    for (const [key, { shape }] of Object.entries(expected)) {
      const t = tensors[key];
      if (t === undefined) throw new Error(`${file}: tensor "${key}" is missing`);
      if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
        throw new Error(
          `${file}: tensor "${key}" has shape [${t.shape.join(", ")}], expected [${
            shape.join(", ")
          }]`,
        );
      }
    }
    for (const key of Object.keys(tensors)) {
      if (!(key in expected)) throw new Error(`${file}: unexpected tensor "${key}"`);
    }
  }
  return tensors as Record<string, Tensor<"f32">>;
}

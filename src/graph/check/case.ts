/**
 * What an op-check case is ({@linkcode OpCase}: inputs, the graph under test, an independent
 * naive reference on host tensors), how its inputs are drawn, and the helpers the case tables
 * (`cases_math.ts`, `cases_data.ts`, gathered in `cases.ts`) are written with.
 *
 * @module
 */
import type { DType } from "../../tensor/dtype.ts";
import { storeNumbers } from "../../tensor/elements.ts";
import type { Rng } from "../../tensor/rng.ts";
import { shapeSize, type Tensor } from "../../tensor/tensor.ts";
import * as ref from "../../tensor/ops.ts";
import type { Dim, Value } from "../ir.ts";

/** One input of a case. */
export interface CaseInput {
  /** Concrete shape fed at run time. */
  readonly shape: readonly number[];
  /** Declared dims (string names make them dynamic); default `shape`. */
  readonly dims?: readonly Dim[];
  /** Dtype when not the case's float dtype (e.g. `i64` indices). */
  readonly dtype?: DType;
  /** Fixed values (indices, masks); random otherwise. */
  readonly values?: readonly number[];
  /** Draw from [0.5, 1.5] instead of [-1, 1] (logs, roots, divisors). */
  readonly positive?: boolean;
  /** Exclude from the gradient check. */
  readonly noGrad?: boolean;
}

/** A check case. */
export interface OpCase {
  /** Unique name, e.g. `"MatMul batched"`. */
  readonly name: string;
  /** ONNX ops the case exercises (for the doctor's listing). */
  readonly ops: readonly string[];
  /** Float dtype on the device: f64, or f32 where ONNX Runtime's CPU provider lacks f64. */
  readonly dtype: "f64" | "f32";
  /** Inputs in order. */
  readonly inputs: readonly CaseInput[];
  /** Builds the output from the inputs. */
  build(...xs: Value[]): Value;
  /** The same computation on host tensors, in float64. */
  reference(...xs: Tensor[]): Tensor;
  /** Forward-only case (boolean or integer results). */
  readonly noGrad?: boolean;
}

/** Draws a case's host inputs from `rng`. */
export function caseInputs(c: OpCase, rng: Rng): Tensor[] {
  return c.inputs.map((spec) => {
    const n = shapeSize(spec.shape);
    const values = spec.values ??
      Array.from({ length: n }, () => spec.positive ? 0.5 + rng.uniform() : rng.uniform() * 2 - 1);
    if (values.length !== n) throw new Error(`case ${c.name}: fixed values do not fit the shape`);
    return storeNumbers(spec.dtype ?? c.dtype, spec.shape, values);
  });
}

/** A float input of `shape`. */
export const f = (shape: number[], extra: Partial<CaseInput> = {}): CaseInput => ({
  shape,
  ...extra,
});
/** A fixed int64 input (indices) of `shape`, not differentiated. */
export const ids = (shape: number[], values: number[]): CaseInput => ({
  shape,
  values,
  dtype: "i64",
  noGrad: true,
});

/** A unary elementwise case in f64 (or `dtype`). */
export function unaryCase(
  name: string,
  build: (x: Value) => Value,
  fn: (v: number) => number,
  options: { positive?: boolean; dtype?: "f32" | "f64"; ops?: string[] } = {},
): OpCase {
  return {
    name,
    ops: options.ops ?? [name],
    dtype: options.dtype ?? "f64",
    inputs: [f([2, 3], { positive: options.positive })],
    build,
    reference: (x) => ref.map(x, fn),
  };
}

/** `t` as f64 (references of integer or boolean results). */
export const asF64 = (t: Tensor): Tensor => ref.cast(t, "f64");

/** Every case, in the order the doctor prints them. */

/**
 * Tensor constructors: constant fills, ranges, nested arrays, seeded random tensors and the
 * PyTorch weight initialisers (`kaiming_normal_`, `kaiming_uniform_`, the `nn.Linear` bias).
 *
 * @module
 */
import type { DType } from "./dtype.ts";
import { storeNumbers } from "./elements.ts";
import type { Rng } from "./rng.ts";
import { shapeSize, type Tensor } from "./tensor.ts";

/** A number or a nested array of numbers, as accepted by {@linkcode fromArray}. */
export type NestedNumbers = number | boolean | readonly NestedNumbers[];

/** A tensor of `shape` filled with `value`, stored by the dtype's rules (default f32). */
export function full<D extends DType = "f32">(
  shape: readonly number[],
  value: number,
  dtype: D = "f32" as D,
): Tensor<D> {
  return storeNumbers(dtype, shape, new Float64Array(shapeSize(shape)).fill(value));
}

/** A tensor of zeros (default f32). */
export function zeros<D extends DType = "f32">(
  shape: readonly number[],
  dtype: D = "f32" as D,
): Tensor<D> {
  return full(shape, 0, dtype);
}

/** A tensor of ones (default f32). */
export function ones<D extends DType = "f32">(
  shape: readonly number[],
  dtype: D = "f32" as D,
): Tensor<D> {
  return full(shape, 1, dtype);
}

/**
 * The 1-D tensor `start, start + step, ...` below `stop` (numpy `arange`; length
 * `ceil((stop - start) / step)`, at least 0). With one argument it counts from 0.
 *
 * @example
 * ```ts
 * import { arange } from "./create.ts";
 * const t = arange(1, 7, 2, "i32"); // [1, 3, 5]
 * if (t.data[2] !== 5) throw new Error("arange");
 * ```
 */
export function arange<D extends DType = "f32">(
  start: number,
  stop?: number,
  step = 1,
  dtype: D = "f32" as D,
): Tensor<D> {
  if (stop === undefined) [start, stop] = [0, start];
  if (step === 0 || !Number.isFinite(step)) throw new Error(`arange step must be finite, non-zero`);
  const n = Math.max(0, Math.ceil((stop - start) / step));
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) values[i] = start + i * step;
  return storeNumbers(dtype, [n], values);
}

/**
 * A tensor from nested JS arrays (shape inferred; ragged arrays throw) or from a flat array
 * and an explicit shape. Booleans count as 0/1. Default dtype f32.
 *
 * @example
 * ```ts
 * import { fromArray } from "./create.ts";
 * const a = fromArray([[1, 2, 3], [4, 5, 6]]);
 * const b = fromArray([1, 2, 3, 4, 5, 6], [2, 3], "i64");
 * if (a.shape[1] !== 3 || b.data[5] !== 6n) throw new Error("fromArray");
 * ```
 */
export function fromArray<D extends DType = "f32">(
  values: NestedNumbers,
  shapeOrDtype?: readonly number[] | D,
  dtype?: D,
): Tensor<D> {
  const shape = Array.isArray(shapeOrDtype) ? shapeOrDtype : undefined;
  const dt = (typeof shapeOrDtype === "string" ? shapeOrDtype : dtype ?? "f32") as D;
  const flat: number[] = [];
  const inferred = flatten(values, flat, []);
  if (shape === undefined) return storeNumbers(dt, inferred, flat);
  if (shapeSize(shape) !== flat.length) {
    throw new Error(
      `fromArray: ${flat.length} values do not fill shape [${shape.join(", ")}] (${
        shapeSize(shape)
      } elements)`,
    );
  }
  return storeNumbers(dt, shape, flat);
}

/** Appends the leaves of `v` to `out`; returns the shape of `v`, throwing when ragged. */
function flatten(v: NestedNumbers, out: number[], path: number[]): number[] {
  if (typeof v === "number" || typeof v === "boolean") {
    out.push(Number(v));
    return [];
  }
  if (!Array.isArray(v)) throw new Error(`fromArray: element at [${path}] is not a number`);
  if (v.length === 0) return [0];
  let inner: number[] | undefined;
  v.forEach((item, i) => {
    const s = flatten(item, out, [...path, i]);
    if (inner === undefined) inner = s;
    else if (s.join() !== inner.join()) {
      throw new Error(
        `fromArray: ragged array at [${[...path, i]}]: shape [${s}] differs from [${inner}]`,
      );
    }
  });
  return [v.length, ...inner!];
}

/** Fills a tensor of `shape` and `dtype` with draws of `sample`. */
function sampled<D extends DType>(
  shape: readonly number[],
  dtype: D,
  sample: () => number,
): Tensor<D> {
  const values = new Float64Array(shapeSize(shape));
  for (let i = 0; i < values.length; i++) values[i] = sample();
  return storeNumbers(dtype, shape, values);
}

/** Standard normal samples `N(mean, std^2)` from `rng` (default N(0, 1), f32). */
export function randn<D extends DType = "f32">(
  shape: readonly number[],
  rng: Rng,
  { mean = 0, std = 1, dtype = "f32" as D }: { mean?: number; std?: number; dtype?: D } = {},
): Tensor<D> {
  return sampled(shape, dtype, () => mean + std * rng.normal());
}

/** Uniform samples in [low, high) from `rng` (default [0, 1), f32). */
export function rand<D extends DType = "f32">(
  shape: readonly number[],
  rng: Rng,
  { low = 0, high = 1, dtype = "f32" as D }: { low?: number; high?: number; dtype?: D } = {},
): Tensor<D> {
  return sampled(shape, dtype, () => low + (high - low) * rng.uniform());
}

/**
 * PyTorch's fan-in of a weight of `shape` (`_calculate_fan_in_and_fan_out`):
 * `shape[1] * prod(shape[2:])`. Needs at least 2 dimensions, as in PyTorch.
 */
export function fanIn(shape: readonly number[]): number {
  if (shape.length < 2) {
    throw new Error(
      `fan-in needs a weight with at least 2 dimensions, got shape [${shape.join(", ")}]`,
    );
  }
  return shapeSize(shape.slice(1));
}

/** PyTorch's `calculate_gain("leaky_relu", a)`: `sqrt(2 / (1 + a^2))` (sqrt(2) for a = 0). */
function leakyReluGain(a: number): number {
  return Math.sqrt(2 / (1 + a * a));
}

/**
 * `nn.init.kaiming_normal_` with PyTorch's defaults (mode fan_in, nonlinearity leaky_relu,
 * slope `a` = 0): samples N(0, std^2) with `std = sqrt(2 / (1 + a^2)) / sqrt(fanIn(shape))`.
 */
export function kaimingNormal(shape: readonly number[], rng: Rng, a = 0): Tensor<"f32"> {
  const std = leakyReluGain(a) / Math.sqrt(fanIn(shape));
  return randn(shape, rng, { std });
}

/**
 * `nn.init.kaiming_uniform_` (mode fan_in, nonlinearity leaky_relu): samples
 * U(-bound, bound) with `bound = sqrt(2 / (1 + a^2)) * sqrt(3 / fanIn(shape))`. PyTorch's
 * default is `a = 0`; `nn.Linear` and `nn.Conv*` weights use `a = Math.sqrt(5)`, which makes
 * the bound `1 / sqrt(fanIn)`.
 */
export function kaimingUniform(shape: readonly number[], rng: Rng, a = 0): Tensor<"f32"> {
  const bound = leakyReluGain(a) * Math.sqrt(3 / fanIn(shape));
  return rand(shape, rng, { low: -bound, high: bound });
}

/**
 * The `nn.Linear` bias initialiser: U(-1/sqrt(fanIn), 1/sqrt(fanIn)), where `fanIn` is the
 * fan-in of the layer's weight (its `in_features`); `shape` is the bias shape
 * (`[out_features]`).
 */
export function linearBias(
  shape: readonly number[],
  fanInOfWeight: number,
  rng: Rng,
): Tensor<"f32"> {
  if (!(fanInOfWeight > 0)) throw new Error(`linearBias: fan-in must be > 0, got ${fanInOfWeight}`);
  const bound = 1 / Math.sqrt(fanInOfWeight);
  return rand(shape, rng, { low: -bound, high: bound });
}

/**
 * Numerical comparison of tensors: absolute and relative errors, numpy's `allclose`, and an
 * assertion that names what failed and where.
 *
 * Non-finite values: two NaNs, or two infinities of the same sign, count as equal (difference
 * 0); any other pair involving NaN or ±Inf differs by Infinity.
 *
 * @module
 */
import { toNumbers } from "./elements.ts";
import { broadcastShapes, expand } from "./ops.ts";
import { Tensor } from "./tensor.ts";

/**
 * A tensor, or a flat array of numbers in row-major order. Compared with a tensor, a flat
 * array takes that tensor's shape (sizes must match); otherwise it is 1-D.
 */
export type Numbers = Tensor | ArrayLike<number>;

/** `x` as a tensor, shaped like `like` when `x` is a flat array of the same size. */
function asTensor(x: Numbers, like?: Numbers): Tensor {
  if (x instanceof Tensor) return x;
  const shape = like instanceof Tensor && like.size === x.length ? like.shape : [x.length];
  return new Tensor("f64", shape, Float64Array.from(x));
}

function sameShape(a: Tensor, b: Tensor, what: string): void {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) {
    throw new Error(`${what}: shapes differ: [${a.shape.join(", ")}] vs [${b.shape.join(", ")}]`);
  }
}

/** |x - y| with the non-finite rules of this module. */
function absDiff(x: number, y: number): number {
  if (x === y || (x !== x && y !== y)) return 0;
  const d = Math.abs(x - y);
  return d === d ? d : Infinity;
}

/** The largest |a - b| and its flat index (shapes must match). */
function worst(a: Tensor, b: Tensor, what: string): { diff: number; index: number } {
  sameShape(a, b, what);
  const va = toNumbers(a), vb = toNumbers(b);
  let diff = 0, index = -1;
  for (let i = 0; i < va.length; i++) {
    const d = absDiff(va[i], vb[i]);
    if (d > diff || index < 0) [diff, index] = [d, i];
  }
  return { diff, index };
}

/** The largest finite |x| of `t` (0 when none). */
function maxAbsFinite(t: Tensor): number {
  let m = 0;
  for (const v of toNumbers(t)) if (Number.isFinite(v)) m = Math.max(m, Math.abs(v));
  return m;
}

/** `max |a - b|` over all elements (0 for empty tensors); shapes must be equal. */
export function maxAbsDiff(a: Numbers, b: Numbers): number {
  return worst(asTensor(a, b), asTensor(b, a), "maxAbsDiff").diff;
}

/**
 * The relative error of `a` against the reference `b`:
 * `max|a - b| / max(max|b|, 1e-30)`, where `max|b|` is taken over the finite elements of
 * `b`. It is one number for the whole tensor (normalised by the reference's largest
 * magnitude), not an elementwise ratio, so tiny reference elements do not blow it up.
 */
export function relErr(a: Numbers, b: Numbers): number {
  const tb = asTensor(b, a);
  return maxAbsDiff(a, tb) / Math.max(maxAbsFinite(tb), 1e-30);
}

/** Tolerances of {@linkcode allClose}. */
export interface CloseOptions {
  /** Relative tolerance (default 1e-5, numpy). */
  rtol?: number;
  /** Absolute tolerance (default 1e-8, numpy). */
  atol?: number;
  /** Whether NaN equals NaN (default false, numpy). */
  equalNan?: boolean;
}

/**
 * numpy `allclose`: every `|a - b| <= atol + rtol * |b|` after broadcasting; infinities must
 * match exactly, NaNs only match with `equalNan`.
 */
export function allClose(
  a: Numbers,
  b: Numbers,
  { rtol = 1e-5, atol = 1e-8, equalNan = false }: CloseOptions = {},
): boolean {
  const ta = asTensor(a, b), tb = asTensor(b, a);
  const shape = broadcastShapes(ta.shape, tb.shape);
  const va = toNumbers(expand(ta, shape)), vb = toNumbers(expand(tb, shape));
  for (let i = 0; i < va.length; i++) {
    const x = va[i], y = vb[i];
    if (x !== x || y !== y) {
      if (equalNan && x !== x && y !== y) continue;
      return false;
    }
    if (x === y) continue;
    if (!Number.isFinite(x) || !Number.isFinite(y)) return false;
    if (!(Math.abs(x - y) <= atol + rtol * Math.abs(y))) return false;
  }
  return true;
}

/** The multi-index of flat index `flat` in `shape`. */
function unravel(flat: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = flat % shape[d];
    flat = Math.floor(flat / shape[d]);
  }
  return idx;
}

/**
 * Throws unless `relErr(actual, expected) <= bound`. The error names `label`, the bound, the
 * relative and absolute errors, the worst index and the two values there.
 *
 * @example
 * ```ts
 * import { assertClose } from "./compare.ts";
 * assertClose([1, 2.0000001], [1, 2], 1e-6, "doubling");
 * ```
 */
export function assertClose(
  actual: Numbers,
  expected: Numbers,
  bound: number,
  label: string,
): void {
  const ta = asTensor(actual, expected), tb = asTensor(expected, actual);
  const { diff, index } = worst(ta, tb, label);
  const scale = Math.max(maxAbsFinite(tb), 1e-30);
  const err = diff / scale;
  if (err <= bound) return;
  const at = unravel(index, ta.shape);
  throw new Error(
    `${label}: relative error ${err.toExponential(3)} exceeds bound ${bound.toExponential(3)} ` +
      `(max|actual - expected| = ${diff.toExponential(3)}, max|expected| = ${
        scale.toExponential(3)
      }) at index [${at.join(", ")}]: actual ${toNumbers(ta)[index]}, expected ${
        toNumbers(tb)[index]
      }`,
  );
}

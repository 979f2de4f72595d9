/**
 * Host reference arithmetic (see `../ops.ts`): elementwise ops with broadcasting, matmul and
 * cast, computed in float64 and stored once in the result dtype.
 *
 * @module
 */
import { allocate, type DType, type DTypeArrays, isFloat } from "../dtype.ts";
import { storeNumbers, toNumbers } from "../elements.ts";
import { Tensor } from "../tensor.ts";
import { broadcastMap, broadcastShapes, fmt, nanMax, nanMin, requireFloat } from "./common.ts";

// ---------------------------------------------------------------------------------------------
// Elementwise

/**
 * Applies `f` to every element (as a float64 number) and stores the result in `dtype`
 * (default: the input's dtype).
 */
export function map<D extends DType, O extends DType = D>(
  x: Tensor<D>,
  f: (v: number, i: number) => number,
  dtype: O = x.dtype as unknown as O,
): Tensor<O> {
  const v = toNumbers(x);
  for (let i = 0; i < v.length; i++) v[i] = f(v[i], i);
  return storeNumbers(dtype, x.shape, v);
}

/** An operand of a binary op: a tensor, or a number taken as a scalar of the other's dtype. */
export type Operand<D extends DType> = Tensor<D> | number;

/** Broadcasts `a` and `b` (same dtype) and combines elements with `f`, storing as `outDtype`. */
function binary<D extends DType>(
  op: string,
  a: Operand<D>,
  b: Operand<D>,
  f: (x: number, y: number, float: boolean) => number,
  outDtype?: DType,
): Tensor {
  const ta = typeof a === "number" ? undefined : a, tb = typeof b === "number" ? undefined : b;
  const dtype = ta?.dtype ?? tb?.dtype;
  if (dtype === undefined) throw new Error(`${op}: at least one operand must be a tensor`);
  if (ta && tb && ta.dtype !== tb.dtype) {
    throw new Error(`${op}: dtypes differ (${ta.dtype} vs ${tb.dtype})`);
  }
  const A = ta ?? storeNumbers(dtype, [], [a as number]),
    B = tb ?? storeNumbers(dtype, [], [b as number]);
  const shape = broadcastShapes(A.shape, B.shape);
  const ma = broadcastMap(A.shape, shape), mb = broadcastMap(B.shape, shape);
  const va = toNumbers(A), vb = toNumbers(B), out = new Float64Array(ma.length);
  const float = isFloat(dtype);
  for (let i = 0; i < out.length; i++) out[i] = f(va[ma[i]], vb[mb[i]], float);
  return storeNumbers(outDtype ?? dtype, shape, out);
}

/** `a + b` with broadcasting. */
export function add<D extends DType>(a: Operand<D>, b: Operand<D>): Tensor<D> {
  return binary("add", a, b, (x, y) => x + y) as Tensor<D>;
}
/** `a - b` with broadcasting. */
export function sub<D extends DType>(a: Operand<D>, b: Operand<D>): Tensor<D> {
  return binary("sub", a, b, (x, y) => x - y) as Tensor<D>;
}
/** `a * b` with broadcasting. */
export function mul<D extends DType>(a: Operand<D>, b: Operand<D>): Tensor<D> {
  return binary("mul", a, b, (x, y) => x * y) as Tensor<D>;
}
/** `a / b` with broadcasting; integer dtypes truncate toward zero (division by 0 stores 0). */
export function div<D extends DType>(a: Operand<D>, b: Operand<D>): Tensor<D> {
  return binary("div", a, b, (x, y, float) => (float ? x / y : Math.trunc(x / y))) as Tensor<D>;
}
/** `a ** b` with broadcasting (`Math.pow`). */
export function pow<D extends DType>(a: Operand<D>, b: Operand<D>): Tensor<D> {
  return binary("pow", a, b, (x, y) => Math.pow(x, y)) as Tensor<D>;
}
/** Elementwise maximum with broadcasting; NaN wins (numpy `maximum`, ONNX Max). */
export function maximum<D extends DType>(a: Operand<D>, b: Operand<D>): Tensor<D> {
  return binary("maximum", a, b, nanMax) as Tensor<D>;
}
/** Elementwise minimum with broadcasting; NaN wins (numpy `minimum`, ONNX Min). */
export function minimum<D extends DType>(a: Operand<D>, b: Operand<D>): Tensor<D> {
  return binary("minimum", a, b, nanMin) as Tensor<D>;
}
/** `a == b` → bool, with broadcasting (NaN is not equal to anything). */
export function equal<D extends DType>(a: Operand<D>, b: Operand<D>): Tensor<"bool"> {
  return binary("equal", a, b, (x, y) => Number(x === y), "bool") as Tensor<"bool">;
}
/** `a < b` → bool, with broadcasting. */
export function less<D extends DType>(a: Operand<D>, b: Operand<D>): Tensor<"bool"> {
  return binary("less", a, b, (x, y) => Number(x < y), "bool") as Tensor<"bool">;
}
/** `a > b` → bool, with broadcasting. */
export function greater<D extends DType>(a: Operand<D>, b: Operand<D>): Tensor<"bool"> {
  return binary("greater", a, b, (x, y) => Number(x > y), "bool") as Tensor<"bool">;
}

/**
 * The error function of `x` (a JS number), accurate to a few ulps in float64: the
 * positive-term series `erf(x) = 2/sqrt(pi) · exp(-x^2) · Σ 2^n x^(2n+1) / (1·3·…·(2n+1))`
 * for |x| < 6, and ±1 beyond (where erfc(x) < 2^-55).
 */
export function erfNumber(x: number): number {
  if (x !== x) return NaN;
  const ax = Math.abs(x);
  if (ax >= 6) return Math.sign(x);
  let term = ax, sum = ax;
  for (let n = 1; term > sum * 1e-17; n++) {
    term *= (2 * ax * ax) / (2 * n + 1);
    sum += term;
  }
  return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * Math.exp(-ax * ax) * sum;
}

/** The error function elementwise (float dtypes), computed in float64 by {@linkcode erfNumber}. */
export function erf<D extends DType>(x: Tensor<D>): Tensor<D> {
  requireFloat(x, "erf");
  return map(x, erfNumber);
}

// ---------------------------------------------------------------------------------------------
// Matmul

/**
 * numpy/ONNX MatMul: the last two dims multiply as matrices, leading (batch) dims broadcast;
 * a 1-D `a` is a row vector and a 1-D `b` a column vector, and their dim is dropped from the
 * result. Accumulates in float64.
 */
export function matmul<D extends DType>(a: Tensor<D>, b: Tensor<D>): Tensor<D> {
  if (a.dtype !== b.dtype) throw new Error(`matmul: dtypes differ (${a.dtype} vs ${b.dtype})`);
  if (a.rank === 0 || b.rank === 0) throw new Error("matmul: operands must have at least 1 dim");
  const as = a.rank === 1 ? [1, a.shape[0]] : a.shape,
    bs = b.rank === 1 ? [b.shape[0], 1] : b.shape;
  const [M, K] = as.slice(-2), [K2, N] = bs.slice(-2);
  if (K !== K2) throw new Error(`matmul: inner dims differ: ${fmt(a.shape)} @ ${fmt(b.shape)}`);
  const batch = broadcastShapes(as.slice(0, -2), bs.slice(0, -2));
  const mapA = broadcastMap(as.slice(0, -2), batch), mapB = broadcastMap(bs.slice(0, -2), batch);
  const va = toNumbers(a), vb = toNumbers(b), out = new Float64Array(mapA.length * M * N);
  for (let p = 0; p < mapA.length; p++) {
    const oa = mapA[p] * M * K, ob = mapB[p] * K * N, oc = p * M * N;
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += va[oa + i * K + k] * vb[ob + k * N + j];
        out[oc + i * N + j] = s;
      }
    }
  }
  const shape = [...batch, ...(a.rank === 1 ? [] : [M]), ...(b.rank === 1 ? [] : [N])];
  return storeNumbers(a.dtype, shape, out);
}

// ---------------------------------------------------------------------------------------------
// Cast

/**
 * Converts to `dtype` by the storage rules of `storeNumbers` (floats to ints truncate toward
 * zero and wrap, to bool test non-zero, f64 to f16/bf16 rounds through float32 as ONNX
 * Runtime does). i64 to integer dtypes converts exactly with BigInt wrapping.
 */
export function cast<O extends DType>(x: Tensor, dtype: O): Tensor<O> {
  if (x.dtype === dtype) return new Tensor(dtype, x.shape, x.data.slice() as DTypeArrays[O]);
  if (x.dtype === "i64" && (dtype === "i32" || dtype === "u8" || dtype === "bool")) {
    const src = x.data as BigInt64Array, out = allocate(dtype, x.size);
    for (let i = 0; i < out.length; i++) {
      out[i] = dtype === "bool" ? Number(src[i] !== 0n) : Number(BigInt.asIntN(32, src[i]));
    }
    return new Tensor(dtype, x.shape, out as DTypeArrays[O]);
  }
  return storeNumbers(dtype, x.shape, toNumbers(x));
}

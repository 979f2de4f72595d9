/**
 * Linear algebra and neural-network ops: matmul, gemm, linear, einsum, softmax, norms, conv.
 *
 * @module
 */
import type { Dim, Value } from "../ir.ts";
import { broadcastShapes, normAxis, showShape } from "../shape.ts";
import { emit, lift, requireFloat, requireSameDtype } from "./core.ts";
import { add, div, mul, sqrt } from "./elementwise.ts";
import { reduceMean } from "./reduce.ts";
import { squeeze, transpose, unsqueeze } from "./shape_ops.ts";

function checkDim(op: string, a: Dim, b: Dim, what: string): void {
  if (a !== b) throw new Error(`${op}: ${what} differ (${a} vs ${b})`);
}

/**
 * Matrix product with numpy semantics: batch dims broadcast; a 1-D operand is treated as a
 * row (left) or column (right) vector and that axis is removed from the result.
 */
export function matmul(a: Value, b: Value): Value {
  requireSameDtype("MatMul", a, b);
  if (a.rank === 0 || b.rank === 0) throw new Error("MatMul: operands must have rank >= 1");
  if (a.rank === 1) return squeeze(matmul(unsqueeze(a, [0]), b), [-2]);
  if (b.rank === 1) return squeeze(matmul(a, unsqueeze(b, [1])), [-1]);
  checkDim(
    "MatMul",
    a.shape[a.rank - 1],
    b.shape[b.rank - 2],
    `inner dims of ${showShape(a.shape)} and ${showShape(b.shape)}`,
  );
  const batch = broadcastShapes("MatMul", a.shape.slice(0, -2), b.shape.slice(0, -2));
  const shape = [...batch, a.shape[a.rank - 2], b.shape[b.rank - 1]];
  return emit("MatMul", [a, b], {}, a.dtype, shape);
}

/** Options of {@linkcode gemm}. */
export interface GemmOptions {
  /** Scale of `A·B` (default 1). */
  alpha?: number;
  /** Scale of `C` (default 1). */
  beta?: number;
  /** Use `Aᵀ`. */
  transA?: boolean;
  /** Use `Bᵀ`. */
  transB?: boolean;
}

/** ONNX `Gemm`: `alpha · op(A) · op(B) + beta · C` on 2-D operands, `C` broadcast. */
export function gemm(a: Value, b: Value, c: Value | null, options: GemmOptions = {}): Value {
  requireSameDtype("Gemm", a, b, ...(c ? [c] : []));
  if (a.rank !== 2 || b.rank !== 2) throw new Error("Gemm: A and B must be 2-D");
  const [m, k] = options.transA ? [a.shape[1], a.shape[0]] : a.shape;
  const [k2, n] = options.transB ? [b.shape[1], b.shape[0]] : b.shape;
  checkDim("Gemm", k, k2, "inner dims");
  if (c) broadcastShapes("Gemm", c.shape, [m, n]);
  const attrs = {
    alpha: { float: options.alpha ?? 1 },
    beta: { float: options.beta ?? 1 },
    transA: { int: options.transA ? 1 : 0 },
    transB: { int: options.transB ? 1 : 0 },
  };
  return emit("Gemm", c ? [a, b, c] : [a, b], attrs, a.dtype, [m, n]);
}

/** A PyTorch `nn.Linear`: `x Wᵀ + b` with `W` of shape `[out, in]`. */
export function linear(x: Value, weight: Value, bias?: Value | null): Value {
  const y = matmul(x, transpose(weight));
  return bias ? add(y, bias) : y;
}

/**
 * Einstein summation over one or two operands with an explicit output (`"bij,bjk->bik"`).
 * Each label appears at most once per operand.
 */
export function einsum(equation: string, ...xs: Value[]): Value {
  const m = /^([a-zA-Z,]*)->([a-zA-Z]*)$/.exec(equation.replaceAll(" ", ""));
  if (!m) {
    throw new Error(`Einsum: equation ${JSON.stringify(equation)} needs the form "ab,bc->ac"`);
  }
  const terms = m[1].split(",");
  if (terms.length !== xs.length) {
    throw new Error(`Einsum: ${equation} has ${terms.length} operands, got ${xs.length}`);
  }
  const dims = new Map<string, Dim>();
  terms.forEach((t, i) => {
    if (t.length !== xs[i].rank) {
      throw new Error(`Einsum: '${t}' does not match ${xs[i].describe()}`);
    }
    if (new Set(t).size !== t.length) throw new Error(`Einsum: repeated label in '${t}'`);
    [...t].forEach((l, j) => {
      const d = xs[i].shape[j];
      const known = dims.get(l);
      if (known === undefined || known === 1) dims.set(l, d);
      else if (d !== 1 && d !== known) throw new Error(`Einsum: label '${l}' is ${known} and ${d}`);
    });
  });
  const out = [...m[2]].map((l) => {
    const d = dims.get(l);
    if (d === undefined) throw new Error(`Einsum: output label '${l}' is in no operand`);
    return d;
  });
  requireSameDtype("Einsum", ...xs);
  return emit("Einsum", xs, { equation: { string: `${m[1]}->${m[2]}` } }, xs[0].dtype, out);
}

/** Softmax along `axis`. */
export function softmax(x: Value, axis = -1): Value {
  requireFloat("Softmax", x);
  return emit(
    "Softmax",
    [x],
    { axis: { int: normAxis("Softmax", axis, x.rank) } },
    x.dtype,
    x.shape,
  );
}

/** Log-softmax along `axis`. */
export function logSoftmax(x: Value, axis = -1): Value {
  requireFloat("LogSoftmax", x);
  const attrs = { axis: { int: normAxis("LogSoftmax", axis, x.rank) } };
  return emit("LogSoftmax", [x], attrs, x.dtype, x.shape);
}

/**
 * ONNX `LayerNormalization` over the axes from `axis` on (PyTorch `nn.LayerNorm` with
 * `axis = -len(normalized_shape)`); `weight` and `bias` have the normalised shape.
 */
export function layerNorm(
  x: Value,
  weight: Value,
  bias: Value | null,
  eps = 1e-5,
  axis = -1,
): Value {
  requireFloat("LayerNormalization", x);
  const a = normAxis("LayerNormalization", axis, x.rank);
  const attrs = { axis: { int: a }, epsilon: { float: eps } };
  return emit(
    "LayerNormalization",
    bias ? [x, weight, bias] : [x, weight],
    attrs,
    x.dtype,
    x.shape,
  );
}

/** RMS norm over the last axis as LLaMA defines it: `w · x / sqrt(mean(x²) + eps)`. */
export function rmsNorm(x: Value, weight: Value, eps = 1e-6): Value {
  const meanSquare = reduceMean(mul(x, x), [-1], true);
  return mul(weight, div(x, sqrt(add(meanSquare, lift(eps, x)))));
}

/** Options of {@linkcode conv}. */
export interface ConvOptions {
  /** Stride per spatial axis (default 1). */
  strides?: readonly number[];
  /** `[begin…, end…]` zero padding per spatial axis (default 0). */
  pads?: readonly number[];
}

/** 2-D convolution, NCHW, weights `[out, in, kh, kw]` (patch embeddings use stride = kernel). */
export function conv(
  x: Value,
  weight: Value,
  bias: Value | null,
  options: ConvOptions = {},
): Value {
  requireSameDtype("Conv", x, weight, ...(bias ? [bias] : []));
  if (x.rank !== 4 || weight.rank !== 4) throw new Error("Conv: input and weight must be 4-D");
  checkDim("Conv", x.shape[1], weight.shape[1], "input channels");
  const strides = options.strides ?? [1, 1];
  const pads = options.pads ?? [0, 0, 0, 0];
  const spatial = [2, 3].map((axis, i) => {
    const d = x.shape[axis];
    const k = weight.shape[axis] as number;
    if (typeof d !== "number") return `${d}/conv`;
    return Math.floor((d + pads[i] + pads[i + 2] - k) / strides[i]) + 1;
  });
  const attrs = { strides: { ints: strides }, pads: { ints: pads } };
  const inputs = bias ? [x, weight, bias] : [x, weight];
  return emit("Conv", inputs, attrs, x.dtype, [x.shape[0], weight.shape[0], ...spatial]);
}

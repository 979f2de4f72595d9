/**
 * Elementwise ops with numpy broadcasting: arithmetic, activations, comparisons, casts.
 *
 * @module
 */
import type { DType } from "../../tensor/dtype.ts";
import type { Value } from "../ir.ts";
import { ONNX_DTYPE } from "../onnx.ts";
import { broadcastShapes } from "../shape.ts";
import { emit, lift, liftPair, requireFloat, requireSameDtype, type ValueLike } from "./core.ts";

function binary(op: string, a: ValueLike, b: ValueLike): Value {
  const [x, y] = liftPair(a, b);
  requireSameDtype(op, x, y);
  return emit(op, [x, y], {}, x.dtype, broadcastShapes(op, x.shape, y.shape));
}

function unary(op: string, x: Value): Value {
  requireFloat(op, x);
  return emit(op, [x], {}, x.dtype, x.shape);
}

/** `a + b` with broadcasting. */
export function add(a: ValueLike, b: ValueLike): Value {
  return binary("Add", a, b);
}
/** `a - b` with broadcasting. */
export function sub(a: ValueLike, b: ValueLike): Value {
  return binary("Sub", a, b);
}
/** `a * b` with broadcasting. */
export function mul(a: ValueLike, b: ValueLike): Value {
  return binary("Mul", a, b);
}
/** `a / b` with broadcasting. */
export function div(a: ValueLike, b: ValueLike): Value {
  return binary("Div", a, b);
}
/** `a ** b` with broadcasting (both operands of one float dtype). */
export function pow(a: ValueLike, b: ValueLike): Value {
  return binary("Pow", a, b);
}

/** `-x`. */
export function neg(x: Value): Value {
  return emit("Neg", [x], {}, x.dtype, x.shape);
}
/** `e^x`. */
export function exp(x: Value): Value {
  return unary("Exp", x);
}
/** Natural logarithm. */
export function log(x: Value): Value {
  return unary("Log", x);
}
/** Square root. */
export function sqrt(x: Value): Value {
  return unary("Sqrt", x);
}
/** `|x|`. */
export function abs(x: Value): Value {
  return emit("Abs", [x], {}, x.dtype, x.shape);
}
/** `max(x, 0)`. */
export function relu(x: Value): Value {
  return unary("Relu", x);
}
/** `1 / (1 + e^-x)`. */
export function sigmoid(x: Value): Value {
  return unary("Sigmoid", x);
}
/** Hyperbolic tangent. */
export function tanh(x: Value): Value {
  return unary("Tanh", x);
}
/** The error function. */
export function erf(x: Value): Value {
  return unary("Erf", x);
}
/** `sign(x)` (-1, 0 or 1). */
export function sign(x: Value): Value {
  return emit("Sign", [x], {}, x.dtype, x.shape, { noGrad: true });
}

/**
 * GELU: `x Φ(x)` exactly (`approximate: "none"`, erf form) or with the tanh approximation
 * (`"tanh"`), as ONNX `Gelu` (opset 20) and PyTorch define them.
 */
export function gelu(x: Value, approximate: "none" | "tanh" = "none"): Value {
  requireFloat("Gelu", x);
  return emit("Gelu", [x], { approximate: { string: approximate } }, x.dtype, x.shape);
}

/** Quick-GELU as CLIP uses it: `x σ(1.702 x)`. */
export function quickGelu(x: Value): Value {
  return mul(x, sigmoid(mul(x, 1.702)));
}

/** SiLU (swish): `x σ(x)`. */
export function silu(x: Value): Value {
  return mul(x, sigmoid(x));
}

/** Clamps `x` into `[min, max]` (either bound may be omitted). */
export function clip(x: Value, min?: number, max?: number): Value {
  const lo = min === undefined ? null : lift(min, x);
  const hi = max === undefined ? null : lift(max, x);
  return emit("Clip", [x, lo, hi], {}, x.dtype, x.shape);
}

function compare(op: string, a: ValueLike, b: ValueLike): Value {
  const [x, y] = liftPair(a, b);
  requireSameDtype(op, x, y);
  return emit(op, [x, y], {}, "bool", broadcastShapes(op, x.shape, y.shape), { noGrad: true });
}

/** `a == b` → bool. */
export function equal(a: ValueLike, b: ValueLike): Value {
  return compare("Equal", a, b);
}
/** `a < b` → bool. */
export function less(a: ValueLike, b: ValueLike): Value {
  return compare("Less", a, b);
}
/** `a > b` → bool. */
export function greater(a: ValueLike, b: ValueLike): Value {
  return compare("Greater", a, b);
}
/** `a >= b` → bool. */
export function greaterOrEqual(a: ValueLike, b: ValueLike): Value {
  return compare("GreaterOrEqual", a, b);
}
/** `a <= b` → bool. */
export function lessOrEqual(a: ValueLike, b: ValueLike): Value {
  return compare("LessOrEqual", a, b);
}
/** Logical and of two bool tensors. */
export function and(a: Value, b: Value): Value {
  return emit("And", [a, b], {}, "bool", broadcastShapes("And", a.shape, b.shape), {
    noGrad: true,
  });
}
/** Logical not of a bool tensor. */
export function not(a: Value): Value {
  return emit("Not", [a], {}, "bool", a.shape, { noGrad: true });
}

/** `cond ? a : b` elementwise with broadcasting. */
export function where(cond: Value, a: ValueLike, b: ValueLike): Value {
  const [x, y] = liftPair(a, b);
  requireSameDtype("Where", x, y);
  if (cond.dtype !== "bool") {
    throw new Error(`Where: condition must be bool, got ${cond.describe()}`);
  }
  const shape = broadcastShapes("Where", cond.shape, x.shape, y.shape);
  return emit("Where", [cond, x, y], {}, x.dtype, shape);
}

/** Converts `x` to `dtype` (a no-op when it already has it). */
export function cast(x: Value, dtype: DType): Value {
  if (x.dtype === dtype) return x;
  return emit("Cast", [x], { to: { int: ONNX_DTYPE[dtype] } }, dtype, x.shape);
}

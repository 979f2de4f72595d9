/**
 * The gradient rules: one entry per differentiable op, written in the same op language as
 * the forward pass. A rule gets the node, the gradients of its outputs (null where an output
 * got none) and which inputs need a gradient; it returns one gradient (or null) per input, in
 * the broadcast shape of the output where the op broadcasts (`grad.ts` sums it back).
 *
 * @module
 */
import { Tensor } from "../tensor/tensor.ts";
import type { Attr, Node, Value } from "./ir.ts";
import * as op from "./ops.ts";

/** A gradient rule. */
export type Rule = (
  node: Node,
  outGrads: readonly (Value | null)[],
  wants: readonly boolean[],
) => (Value | null)[];

function attr(node: Node, name: string): Attr | undefined {
  return node.attrs[name];
}
function attrInt(node: Node, name: string, fallback: number): number {
  const a = attr(node, name);
  return a && "int" in a ? a.int : fallback;
}
function attrFloat(node: Node, name: string, fallback: number): number {
  const a = attr(node, name);
  return a && "float" in a ? a.float : fallback;
}
function attrInts(node: Node, name: string): readonly number[] | undefined {
  const a = attr(node, name);
  return a && "ints" in a ? a.ints : undefined;
}
function attrString(node: Node, name: string, fallback: string): string {
  const a = attr(node, name);
  return a && "string" in a ? a.string : fallback;
}

/** The integer values of a constant input (axes, starts, …). */
function constInts(v: Value | null, what: string): number[] {
  if (!v || v.source.kind !== "constant") {
    throw new Error(`grad: ${what} must be a constant, got ${v ? v.describe() : "nothing"}`);
  }
  return Array.from(v.source.tensor.data as ArrayLike<number | bigint>, Number);
}

function inputs(node: Node): Value[] {
  return node.inputs as Value[];
}

/** Grad of an elementwise unary op: `g · f'(x)`. */
function unary(derivative: (x: Value, y: Value) => Value): Rule {
  return (node, [g]) => [op.mul(g!, derivative(inputs(node)[0], node.outputs[0]))];
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

function geluDerivative(x: Value, approximate: string): Value {
  if (approximate === "tanh") {
    const x2 = op.mul(x, x);
    const u = op.mul(op.add(x, op.mul(op.mul(x2, x), 0.044715)), SQRT_2_OVER_PI);
    const t = op.tanh(u);
    const du = op.mul(op.add(op.mul(x2, 3 * 0.044715), 1), SQRT_2_OVER_PI);
    const left = op.mul(op.add(t, 1), 0.5);
    return op.add(left, op.mul(op.mul(op.mul(x, 0.5), op.sub(1, op.mul(t, t))), du));
  }
  const cdf = op.mul(op.add(op.erf(op.mul(x, Math.SQRT1_2)), 1), 0.5);
  const pdf = op.mul(op.exp(op.mul(op.mul(x, x), -0.5)), 1 / Math.sqrt(2 * Math.PI));
  return op.add(cdf, op.mul(x, pdf));
}

function reduceBackward(node: Node, g: Value): Value {
  const x = inputs(node)[0];
  const axes = constInts(node.inputs[1], "reduction axes").map((a) => (a < 0 ? a + x.rank : a));
  const kept = attrInt(node, "keepdims", 1) ? g : op.unsqueeze(g, axes);
  return op.expandLike(kept, x);
}

/**
 * The gradient of `b` in `a · b` for the output gradient `g`. A matrix `b` `[K, N]` applied to
 * every row of a batched `a` `[..., M, K]` (a weight) gets one matmul over all rows,
 * `flattenLeading(a)ᵀ · flattenLeading(g)`, instead of one per batch element summed
 * afterwards (the same sum, far less work); otherwise `aᵀ · g` in the broadcast shape.
 */
function matmulRightGrad(a: Value, b: Value, g: Value): Value {
  const k = a.shape[a.rank - 1], n = b.shape[1];
  if (b.rank !== 2 || a.rank < 3 || typeof k !== "number" || typeof n !== "number") {
    return op.matmul(op.transposeLast(a), g);
  }
  return op.matmul(op.transposeLast(op.flattenLeading(a)), op.flattenLeading(g));
}

/** Number of elements reduced over `axes` of `x`, as a scalar of `x`'s dtype. */
function reducedCount(x: Value, axes: readonly number[]): Value {
  const dims = axes.map((a) => x.shape[a]);
  if (dims.every((d) => typeof d === "number")) {
    return op.scalar(x.graph, x.dtype, (dims as number[]).reduce((p, d) => p * d, 1));
  }
  const sizes = op.concat(axes.map((a) => op.dimOf(x, a)), 0);
  const prod = op.emit("ReduceProd", [sizes], { keepdims: { int: 0 } }, "i64", [], {
    noGrad: true,
  });
  return op.cast(prod, x.dtype);
}

function layerNormBackward(node: Node, g: Value, wants: readonly boolean[]): (Value | null)[] {
  const [x, w] = inputs(node);
  const axis = attrInt(node, "axis", -1);
  const a = axis < 0 ? axis + x.rank : axis;
  const eps = attrFloat(node, "epsilon", 1e-5);
  const axes = [...Array(x.rank - a).keys()].map((i) => i + a);
  const centered = op.sub(x, op.reduceMean(x, axes, true));
  const variance = op.reduceMean(op.mul(centered, centered), axes, true);
  const rstd = op.div(1, op.sqrt(op.add(variance, eps)));
  const xhat = op.mul(centered, rstd);
  const dxhat = op.mul(g, w);
  const dx = wants[0]
    ? op.mul(
      rstd,
      op.sub(
        op.sub(dxhat, op.reduceMean(dxhat, axes, true)),
        op.mul(xhat, op.reduceMean(op.mul(dxhat, xhat), axes, true)),
      ),
    )
    : null;
  return [dx, wants[1] ? op.mul(g, xhat) : null, wants[2] ? g : null];
}

/** Splits `g` along `axis` into pieces shaped like `parts` (sizes read at run time). */
function splitLike(g: Value, parts: readonly Value[], axis: number): Value[] {
  const sizes = op.concat(parts.map((p) => op.dimOf(p, axis)), 0);
  return g.graph.node(
    "Split",
    [g, sizes],
    { axis: { int: axis } },
    parts.map((p) => ({ dtype: g.dtype, shape: p.shape })),
  );
}

/** The int64 positions `0 … dim(x, axis) - 1`. */
function positions(x: Value, axis: number): Value {
  const d = x.shape[axis];
  if (typeof d === "number") {
    return x.graph.constant(
      new Tensor("i64", [d], BigInt64Array.from({ length: d }, (_, i) => BigInt(i))),
    );
  }
  const limit = op.squeeze(op.dimOf(x, axis), [0]);
  const g = x.graph;
  return op.range(op.scalar(g, "i64", 0), limit, op.scalar(g, "i64", 1), d);
}

function sliceBackward(node: Node, g: Value): Value {
  const x = inputs(node)[0];
  const starts = constInts(node.inputs[1], "Slice starts");
  const ends = constInts(node.inputs[2], "Slice ends");
  const axes = constInts(node.inputs[3], "Slice axes");
  const steps = constInts(node.inputs[4], "Slice steps");
  let cur = g;
  axes.forEach((axis, i) => {
    const index = op.slice(positions(x, axis), [starts[i]], [ends[i]], [0], [steps[i]]);
    const target = cur.shape.map((d, j) => (j === axis ? x.shape[axis] : d));
    const runtimeShape = op.concat(
      cur.shape.map((_, j) => (j === axis ? op.dimOf(x, axis) : op.dimOf(cur, j))),
      0,
    );
    const zeros = op.fill(cur.dtype, target, runtimeShape, 0);
    cur = scatterInto(zeros, cur, axis, index);
  });
  return cur;
}

/** `zeros` with `g` added at positions `index` (int64 vector) along `axis`. */
function scatterInto(zeros: Value, g: Value, axis: number, index: Value): Value {
  const shape = g.shape.map((_, i) => (i === axis ? -1 : 1));
  const declared = g.shape.map((d, i) => (i === axis ? d : 1));
  const column = op.emit("Reshape", [index, op.i64s(g.graph, shape)], {}, "i64", declared, {
    noGrad: true,
  });
  return op.scatterElements(zeros, op.expandLike(column, g), g, axis, "add");
}

function gatherBackward(node: Node, g: Value): Value {
  const [x, indices] = inputs(node);
  const axis = attrInt(node, "axis", 0);
  const flat = op.emit("Reshape", [indices, op.i64s(x.graph, [-1])], {}, indices.dtype, [
    "gathered",
  ], {
    noGrad: true,
  });
  const before = x.shape.slice(0, axis);
  const after = x.shape.slice(axis + 1);
  const runtimeShape = op.concat(
    [
      ...before.map((_, i) => op.dimOf(x, i)),
      op.i64s(x.graph, [-1]),
      ...after.map((_, i) => op.dimOf(x, axis + 1 + i)),
    ],
    0,
  );
  const rows = op.emit("Reshape", [g, runtimeShape], {}, g.dtype, [
    ...before,
    "gathered",
    ...after,
  ]);
  const zeros = op.zerosLike(x);
  return scatterInto(zeros, rows, axis, op.cast(flat, "i64"));
}

function convBackward(node: Node, g: Value, wants: readonly boolean[]): (Value | null)[] {
  const [x, w, b] = node.inputs as [Value, Value, Value | null];
  const strides = attrInts(node, "strides") ?? [1, 1];
  const pads = attrInts(node, "pads") ?? [0, 0, 0, 0];
  const k = [w.shape[2] as number, w.shape[3] as number];
  let dx: Value | null = null;
  if (wants[0]) {
    const outputPadding = [2, 3].map((axis, i) => {
      const d = x.shape[axis];
      if (typeof d !== "number") throw new Error("grad: Conv input needs static spatial dims");
      return (d + pads[i] + pads[i + 2] - k[i]) % strides[i];
    });
    const attrs = {
      strides: { ints: strides },
      pads: { ints: pads },
      output_padding: { ints: outputPadding },
    };
    dx = op.emit("ConvTranspose", [g, w], attrs, x.dtype, x.shape);
  }
  let dw: Value | null = null;
  if (wants[1]) {
    const xt = op.transpose(x, [1, 0, 2, 3]);
    const gt = op.transpose(g, [1, 0, 2, 3]);
    const full = [2, 3].map((axis, i) =>
      (x.shape[axis] as number) + pads[i] + pads[i + 2] -
      strides[i] * ((g.shape[axis] as number) - 1)
    );
    const attrs = { dilations: { ints: strides }, pads: { ints: pads } };
    const corr = op.emit("Conv", [xt, gt], attrs, x.dtype, [
      x.shape[1],
      g.shape[1],
      full[0],
      full[1],
    ]);
    dw = op.transpose(op.slice(corr, [0, 0], k, [2, 3]), [1, 0, 2, 3]);
  }
  const db = b && wants[2] ? op.reduceSum(g, [0, 2, 3]) : null;
  return [dx, dw, db];
}

function einsumBackward(node: Node, g: Value, wants: readonly boolean[]): (Value | null)[] {
  const eq = attrString(node, "equation", "");
  const [lhs, out] = eq.split("->");
  const terms = lhs.split(",");
  const xs = inputs(node);
  return xs.map((x, i) => {
    if (!wants[i]) return null;
    const others = terms.filter((_, j) => j !== i);
    const available = new Set([...out, ...others.join("")]);
    const kept = [...terms[i]].filter((l) => available.has(l)).join("");
    const operands = [g, ...xs.filter((_, j) => j !== i)];
    let r = op.einsum(`${[out, ...others].join(",")}->${kept}`, ...operands);
    const missing = [...terms[i]].map((l, j) => (available.has(l) ? -1 : j)).filter((j) => j >= 0);
    if (missing.length) r = op.expandLike(op.unsqueeze(r, missing), x);
    return r;
  });
}

/** The rule table, by ONNX op type. */
export const RULES: Readonly<Record<string, Rule>> = {
  Add: (_, [g]) => [g, g],
  Sub: (_, [g]) => [g, op.neg(g!)],
  Mul: (node, [g], wants) => {
    const [a, b] = inputs(node);
    return [wants[0] ? op.mul(g!, b) : null, wants[1] ? op.mul(g!, a) : null];
  },
  Div: (node, [g], wants) => {
    const [, b] = inputs(node);
    const y = node.outputs[0];
    return [wants[0] ? op.div(g!, b) : null, wants[1] ? op.neg(op.mul(g!, op.div(y, b))) : null];
  },
  Pow: (node, [g], wants) => {
    const [a, b] = inputs(node);
    const y = node.outputs[0];
    return [
      wants[0] ? op.mul(g!, op.mul(b, op.pow(a, op.sub(b, 1)))) : null,
      wants[1] ? op.mul(g!, op.mul(y, op.log(a))) : null,
    ];
  },
  Neg: (_, [g]) => [op.neg(g!)],
  Exp: unary((_, y) => y),
  Log: (node, [g]) => [op.div(g!, inputs(node)[0])],
  Sqrt: (node, [g]) => [op.div(g!, op.mul(node.outputs[0], 2))],
  Abs: unary((x) => op.sign(x)),
  Relu: (node, [g]) => [op.where(op.greater(inputs(node)[0], 0), g!, 0)],
  Sigmoid: unary((_, y) => op.mul(y, op.sub(1, y))),
  Tanh: unary((_, y) => op.sub(1, op.mul(y, y))),
  Erf: unary((x) => op.mul(op.exp(op.neg(op.mul(x, x))), 2 / Math.sqrt(Math.PI))),
  Gelu: (node, [g]) => {
    const x = inputs(node)[0];
    return [op.mul(g!, geluDerivative(x, attrString(node, "approximate", "none")))];
  },
  Clip: (node, [g]) => {
    const [x, lo, hi] = node.inputs as [Value, Value | null, Value | null];
    let inside = op.equal(x, x);
    if (lo) inside = op.and(inside, op.greaterOrEqual(x, lo));
    if (hi) inside = op.and(inside, op.lessOrEqual(x, hi));
    return [op.where(inside, g!, 0), null, null];
  },
  Where: (node, [g]) => {
    const c = inputs(node)[0];
    return [null, op.where(c, g!, 0), op.where(c, 0, g!)];
  },
  Cast: (node, [g]) => [op.cast(g!, inputs(node)[0].dtype)],
  MatMul: (node, [g], wants) => {
    const [a, b] = inputs(node);
    return [
      wants[0] ? op.matmul(g!, op.transposeLast(b)) : null,
      wants[1] ? matmulRightGrad(a, b, g!) : null,
    ];
  },
  Gemm: (node, [g], wants) => {
    const [a, b] = inputs(node);
    const alpha = attrFloat(node, "alpha", 1);
    const beta = attrFloat(node, "beta", 1);
    const opA = attrInt(node, "transA", 0) ? op.transpose(a) : a;
    const opB = attrInt(node, "transB", 0) ? op.transpose(b) : b;
    const scale = (v: Value, s: number) => (s === 1 ? v : op.mul(v, s));
    const dOpA = scale(op.matmul(g!, op.transpose(opB)), alpha);
    const dOpB = scale(op.matmul(op.transpose(opA), g!), alpha);
    return [
      wants[0] ? (attrInt(node, "transA", 0) ? op.transpose(dOpA) : dOpA) : null,
      wants[1] ? (attrInt(node, "transB", 0) ? op.transpose(dOpB) : dOpB) : null,
      wants[2] ? scale(g!, beta) : null,
    ];
  },
  Einsum: (node, [g], wants) => einsumBackward(node, g!, wants),
  Softmax: (node, [g]) => {
    const y = node.outputs[0];
    const axis = attrInt(node, "axis", -1);
    return [op.mul(y, op.sub(g!, op.reduceSum(op.mul(g!, y), [axis], true)))];
  },
  LogSoftmax: (node, [g]) => {
    const y = node.outputs[0];
    const axis = attrInt(node, "axis", -1);
    return [op.sub(g!, op.mul(op.exp(y), op.reduceSum(g!, [axis], true)))];
  },
  LayerNormalization: (node, [g], wants) => layerNormBackward(node, g!, wants),
  Reshape: (node, [g]) => [op.reshapeLike(g!, inputs(node)[0]), null],
  Squeeze: (node, [g]) => [op.reshapeLike(g!, inputs(node)[0]), null],
  Unsqueeze: (node, [g]) => [op.reshapeLike(g!, inputs(node)[0]), null],
  Expand: (_, [g]) => [g, null],
  Transpose: (node, [g]) => {
    const perm = attrInts(node, "perm")!;
    const inverse = perm.map((_, i) => perm.indexOf(i));
    return [op.transpose(g!, inverse)];
  },
  Concat: (node, [g]) => splitLike(g!, inputs(node), attrInt(node, "axis", 0)),
  Split: (node, gs) => {
    const parts = node.outputs.map((o, i) => gs[i] ?? op.zerosLike(o));
    return [op.concat(parts, attrInt(node, "axis", 0)), null];
  },
  Slice: (node, [g]) => [sliceBackward(node, g!), null, null, null, null],
  Gather: (node, [g]) => [gatherBackward(node, g!), null],
  GatherElements: (node, [g]) => {
    const [x, indices] = inputs(node);
    const zeros = op.zerosLike(x);
    return [op.scatterElements(zeros, indices, g!, attrInt(node, "axis", 0), "add"), null];
  },
  ReduceSum: (node, [g]) => [reduceBackward(node, g!), null],
  ReduceMean: (node, [g]) => {
    const x = inputs(node)[0];
    const axes = constInts(node.inputs[1], "ReduceMean axes").map((a) => (a < 0 ? a + x.rank : a));
    return [op.div(reduceBackward(node, g!), reducedCount(x, axes)), null];
  },
  ReduceMax: (node, [g]) => {
    const x = inputs(node)[0];
    const y = node.outputs[0];
    const keep = attrInt(node, "keepdims", 1);
    const axes = constInts(node.inputs[1], "ReduceMax axes").map((a) => (a < 0 ? a + x.rank : a));
    const yk = keep ? y : op.unsqueeze(y, axes);
    const mask = op.cast(op.equal(x, yk), x.dtype);
    const share = op.div(mask, op.reduceSum(mask, axes, true));
    return [op.mul(share, reduceBackward(node, g!)), null];
  },
  CumSum: (node, [g]) => {
    const axis = constInts(node.inputs[1], "CumSum axis")[0];
    return [op.cumSum(g!, axis, !attrInt(node, "reverse", 0)), null];
  },
  TopK: (node, [g]) => {
    const x = inputs(node)[0];
    const axis = attrInt(node, "axis", -1);
    if (!g) return [null, null];
    return [op.scatterElements(op.zerosLike(x), node.outputs[1], g, axis, "add"), null];
  },
  Trilu: (node, [g]) => {
    const k = constInts(node.inputs[1], "Trilu k")[0];
    return [op.trilu(g!, attrInt(node, "upper", 1) === 1, k), null];
  },
  Conv: (node, [g], wants) => convBackward(node, g!, wants),
};

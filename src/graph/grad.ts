/**
 * Reverse-mode differentiation of a traced graph into more graph.
 *
 * The walk visits, in reverse creation order, only nodes that lie on a path from a value in
 * `wrt` to `loss`; fan-out gradients are summed; `noGrad` nodes and integer values get
 * nothing. Each op's rule (in `rules.ts`) returns gradients in the broadcast shape of its
 * output; one step here sums them back to each input's shape.
 *
 * @module
 */
import { isFloat } from "../tensor/dtype.ts";
import type { Value } from "./ir.ts";
import { add, reduceSum, scalar, squeeze, zerosLike } from "./ops.ts";
import { RULES } from "./rules.ts";
import { sameShape, showShape } from "./shape.ts";

/**
 * Gradients of `loss` with respect to each value of `wrt`, as new values of the same graph.
 * `loss` must be a scalar unless `seed` (the gradient flowing into `loss`) is given. A value
 * of `wrt` that `loss` does not depend on gets zeros.
 */
export function grad(loss: Value, wrt: readonly Value[], seed?: Value): Value[] {
  const g = loss.graph;
  for (const w of wrt) {
    if (w.graph !== g) throw new Error(`grad: ${w.describe()} belongs to another graph`);
    if (!isFloat(w.dtype)) throw new Error(`grad: cannot differentiate w.r.t. ${w.describe()}`);
  }
  if (!seed && loss.rank !== 0) {
    throw new Error(`grad: loss ${loss.describe()} is not a scalar; pass a seed gradient`);
  }
  const needs = dependents(wrt);
  const grads = new Map<number, Value>();
  grads.set(loss.id, seed ?? scalar(g, loss.dtype, 1));

  for (let n = g.nodes.length - 1; n >= 0; n--) {
    const node = g.nodes[n];
    const outGrads = node.outputs.map((o) => grads.get(o.id) ?? null);
    if (outGrads.every((v) => v === null)) continue;
    const wants = node.inputs.map((v) => v !== null && needs.has(v.id));
    if (!wants.some(Boolean)) continue;
    const rule = RULES[node.op];
    if (!rule) {
      throw new Error(
        `grad: no gradient rule for op ${node.op} (producing ${node.outputs[0].describe()})`,
      );
    }
    const inGrads = rule(node, outGrads, wants);
    node.inputs.forEach((input, i) => {
      const gi = inGrads[i];
      if (!input || !wants[i] || !gi) return;
      const fitted = sumToShape(gi, input, node.op);
      const prev = grads.get(input.id);
      grads.set(input.id, prev ? add(prev, fitted) : fitted);
    });
  }
  return wrt.map((w) => grads.get(w.id) ?? zerosLike(w));
}

/** Ids of float values that depend on any value of `wrt` through differentiable nodes. */
function dependents(wrt: readonly Value[]): Set<number> {
  const needs = new Set(wrt.map((w) => w.id));
  if (wrt.length === 0) return needs;
  for (const node of wrt[0].graph.nodes) {
    if (node.noGrad) continue;
    if (!node.inputs.some((v) => v !== null && needs.has(v.id))) continue;
    for (const o of node.outputs) if (isFloat(o.dtype)) needs.add(o.id);
  }
  return needs;
}

/**
 * Sums a gradient in broadcast shape back to the shape of `input`: over leading axes `input`
 * lacks and over axes where `input` has a static 1.
 */
export function sumToShape(gradient: Value, input: Value, op: string): Value {
  if (sameShape(gradient.shape, input.shape)) return gradient;
  const lead = gradient.rank - input.rank;
  const mismatch = () =>
    new Error(
      `grad: rule for ${op} returned ${showShape(gradient.shape)} for input ${input.describe()}`,
    );
  if (lead < 0) throw mismatch();
  const axes: number[] = [];
  for (let i = 0; i < gradient.rank; i++) {
    if (i < lead) axes.push(i);
    else if (input.shape[i - lead] === 1 && gradient.shape[i] !== 1) axes.push(i);
  }
  let out = axes.length ? reduceSum(gradient, axes, true) : gradient;
  if (lead > 0) out = squeeze(out, [...Array(lead).keys()]);
  if (!sameShape(out.shape, input.shape)) throw mismatch();
  return out;
}

/**
 * Lifting a graph's external initializers into graph inputs: the same computation, with the
 * weights fed at run time instead of read from their files. This is how a model's own weights
 * are trained with the model code unchanged: trace the forward pass and the loss as usual (the
 * model code loads every weight with `Graph.external`), take `grad` with respect to the external
 * values, then lift them so that each step feeds the current weights.
 *
 * @module
 */
import { Graph, type Value } from "./ir.ts";

/** A lifted graph (see {@linkcode liftExternals}). */
export interface LiftedGraph {
  /** The new graph. */
  readonly graph: Graph;
  /** The requested outputs, as values of the new graph, by the same names. */
  readonly outputs: Record<string, Value>;
  /** The new graph inputs that replaced external initializers, by the external's name. */
  readonly lifted: ReadonlyMap<string, Value>;
}

/**
 * A copy of `graph` in which every external initializer becomes a graph input of the same name,
 * dtype and shape (externals sharing a name share the input). Graph inputs, constants, nodes
 * (with their attributes and `noGrad` marks) and creation order are kept, so gradients traced
 * before lifting lift with everything else. Throws when two externals share a name but not a
 * dtype and shape, or when an external's name is already a graph input.
 *
 * @example
 * ```ts
 * import { Graph } from "./ir.ts";
 * import * as op from "./ops.ts";
 * import { liftExternals } from "./lift.ts";
 * const g = new Graph();
 * const x = g.input("x", "f32", [2]);
 * const w = g.external("w", "f32", [2], { path: "w.bin", offset: 0, length: 8 });
 * const lifted = liftExternals(g, { y: op.mul(x, w) });
 * if (!lifted.graph.inputs.has("w") || lifted.lifted.get("w")?.source.kind !== "input") {
 *   throw new Error("w is an input now");
 * }
 * ```
 */
export function liftExternals(graph: Graph, outputs: Readonly<Record<string, Value>>): LiftedGraph {
  const out = new Graph();
  const map = new Map<number, Value>();
  const lifted = new Map<string, Value>();
  for (const [name, v] of graph.inputs) map.set(v.id, out.input(name, v.dtype, v.shape));
  const mapped = (v: Value | null): Value | null => {
    if (v === null) return null;
    const m = map.get(v.id);
    if (m === undefined) throw new Error(`liftExternals: ${v.describe()} used before defined`);
    return m;
  };
  for (const v of graph.values) {
    const s = v.source;
    if (s.kind === "constant") map.set(v.id, out.constant(s.tensor, s.name));
    else if (s.kind === "external") map.set(v.id, liftOne(out, lifted, v, s.name));
    else if (s.kind === "node" && s.index === 0) {
      const node = s.node;
      const values = out.node(
        node.op,
        node.inputs.map(mapped),
        { ...node.attrs },
        node.outputs.map((o) => ({ dtype: o.dtype, shape: o.shape })),
        { noGrad: node.noGrad },
      );
      node.outputs.forEach((o, i) => map.set(o.id, values[i]));
    }
  }
  return {
    graph: out,
    outputs: Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, mapped(v)!])),
    lifted,
  };
}

/** The input that replaces external `v` named `name` in `out` (one per name). */
function liftOne(out: Graph, lifted: Map<string, Value>, v: Value, name: string): Value {
  const known = lifted.get(name);
  if (known === undefined) {
    if (out.inputs.has(name)) {
      throw new Error(`liftExternals: external '${name}' has the name of a graph input`);
    }
    const input = out.input(name, v.dtype, v.shape);
    lifted.set(name, input);
    return input;
  }
  if (known.dtype !== v.dtype || known.shape.join() !== v.shape.join()) {
    throw new Error(
      `liftExternals: externals named '${name}' differ: ${known.describe()} and ${v.describe()}`,
    );
  }
  return known;
}

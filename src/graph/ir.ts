/**
 * The traced graph: values, nodes and the graph that owns them.
 *
 * Tracing (this file and `ops.ts`) knows nothing about ONNX; `onnx.ts` lowers a graph to an
 * ONNX `ModelProto`, and `grad.ts` transforms a graph into more graph. Node op types are ONNX
 * op names (domain `ai.onnx`) so lowering is one node to one node.
 *
 * @module
 */
import type { DType } from "../tensor/dtype.ts";
import type { Tensor } from "../tensor/tensor.ts";

/** A dimension: a static size, or the name of a dynamic dimension such as `"batch"`. */
export type Dim = number | string;

/** A node attribute, tagged with its ONNX attribute type. */
export type Attr =
  | { readonly int: number }
  | { readonly float: number }
  | { readonly ints: readonly number[] }
  | { readonly floats: readonly number[] }
  | { readonly string: string }
  | { readonly tensor: Tensor };

/**
 * A weight stored in an existing file, referenced by ONNX external data (no copy).
 * `path` is the file on disk; `offset`/`length` are bytes inside it.
 */
export interface ExternalData {
  /** Absolute or working-directory-relative path of the file holding the bytes. */
  readonly path: string;
  /** Byte offset of the first element. */
  readonly offset: number;
  /** Byte length (`size × bytes per element`). */
  readonly length: number;
}

/** Where a value comes from. */
export type Source =
  | { readonly kind: "input"; readonly name: string }
  | { readonly kind: "constant"; readonly tensor: Tensor; readonly name?: string }
  | { readonly kind: "external"; readonly name: string; readonly data: ExternalData }
  | { readonly kind: "node"; readonly node: Node; readonly index: number };

/** A symbolic tensor of a graph. */
export class Value {
  /** Unique id inside its graph (creation order). */
  readonly id: number;
  /** The graph that owns this value. */
  readonly graph: Graph;
  /** Element type. */
  readonly dtype: DType;
  /** Static or named dynamic dims. */
  readonly shape: readonly Dim[];
  /** Producer of the value. */
  readonly source: Source;

  /** Created by {@linkcode Graph}; not meant to be called directly. */
  constructor(graph: Graph, id: number, dtype: DType, shape: readonly Dim[], source: Source) {
    this.graph = graph;
    this.id = id;
    this.dtype = dtype;
    this.shape = Object.freeze([...shape]);
    this.source = source;
  }

  /** Number of dimensions. */
  get rank(): number {
    return this.shape.length;
  }

  /** A short description for error messages, e.g. `%12 f32[batch, 4] (MatMul)`. */
  describe(): string {
    const from = this.source.kind === "node"
      ? this.source.node.op
      : this.source.kind === "input" || this.source.kind === "external"
      ? `${this.source.kind} ${this.source.name}`
      : "constant";
    return `%${this.id} ${this.dtype}[${this.shape.join(", ")}] (${from})`;
  }
}

/** One operation: an ONNX op type, its inputs (null for an omitted optional input), its outputs. */
export interface Node {
  /** ONNX op type, e.g. `"MatMul"`. */
  readonly op: string;
  /** Inputs in ONNX order; `null` marks an omitted optional input. */
  readonly inputs: readonly (Value | null)[];
  /** Attributes by ONNX name. */
  readonly attrs: Readonly<Record<string, Attr>>;
  /** Outputs in ONNX order. */
  readonly outputs: readonly Value[];
  /** True when gradients must not flow through this node (see `stopGradient`). */
  readonly noGrad: boolean;
}

/** A traced computation: graph inputs, constants and nodes in topological (creation) order. */
export class Graph {
  /** Nodes in creation order, which is a topological order. */
  readonly nodes: Node[] = [];
  /** Every value created in this graph, by id. */
  readonly values: Value[] = [];
  /** Graph inputs by name. */
  readonly inputs: Map<string, Value> = new Map();

  /** Declares a graph input fed at run time. */
  input(name: string, dtype: DType, shape: readonly Dim[]): Value {
    if (this.inputs.has(name)) {
      throw new Error(`graph input ${JSON.stringify(name)} declared twice`);
    }
    const v = this.#value(dtype, shape, { kind: "input", name });
    this.inputs.set(name, v);
    return v;
  }

  /** Embeds a host tensor as an inline initializer. */
  constant(tensor: Tensor, name?: string): Value {
    return this.#value(tensor.dtype, tensor.shape, { kind: "constant", tensor, name });
  }

  /** References bytes of an existing file (e.g. a `.safetensors`) as an external initializer. */
  external(name: string, dtype: DType, shape: readonly number[], data: ExternalData): Value {
    return this.#value(dtype, shape, { kind: "external", name, data });
  }

  /**
   * Appends a node. `outputs` gives each output's dtype and shape (the op builders in `ops.ts`
   * compute them); returns the output values.
   */
  node(
    op: string,
    inputs: readonly (Value | null)[],
    attrs: Record<string, Attr>,
    outputs: readonly { dtype: DType; shape: readonly Dim[] }[],
    options: { noGrad?: boolean } = {},
  ): Value[] {
    for (const v of inputs) {
      if (v !== null && v.graph !== this) {
        throw new Error(`${op}: input ${v.describe()} belongs to another graph`);
      }
    }
    const outs: Value[] = [];
    const node: Node = {
      op,
      inputs: [...inputs],
      attrs: { ...attrs },
      outputs: outs,
      noGrad: options.noGrad ?? false,
    };
    outputs.forEach((o, index) =>
      outs.push(this.#value(o.dtype, o.shape, { kind: "node", node, index }))
    );
    this.nodes.push(node);
    return outs;
  }

  #value(dtype: DType, shape: readonly Dim[], source: Source): Value {
    const v = new Value(this, this.values.length, dtype, shape, source);
    this.values.push(v);
    return v;
  }
}

/**
 * Lowering a traced {@linkcode Graph} to ONNX `ModelProto` bytes that ONNX Runtime loads.
 *
 * One graph node becomes one ONNX node (op types are already ONNX op names, domain `ai.onnx`).
 * Only the nodes the requested outputs depend on are emitted, so a graph that also holds
 * gradient or debugging nodes lowers to just what is asked for; graph inputs and initializers
 * that nothing requested depends on are left out too.
 *
 * Names in the model: graph inputs keep their declared names, graph outputs get the keys of
 * `outputs`, external initializers keep their names, named constants keep theirs, everything
 * else is `v<id>` (a clash appends `_<id>`). Nodes are named `n<index>_<Op>`. The same graph
 * and options always give the same bytes, so the bytes can be hashed for caching.
 *
 * External initializers ({@linkcode Graph.external}) are written with
 * `data_location = EXTERNAL` and `location`/`offset`/`length` entries. ONNX Runtime resolves
 * `location` against the directory of the `.onnx` file and rejects absolute paths, paths with
 * `..`, and symbolic links leading outside that directory, so locations must be relative paths
 * below the model's directory, given by `externalLocation`. Lowering is pure (it reads no
 * file); `compile.ts` checks the files: `relativeTo(dir)` for a model written into `dir`, and
 * `compileModel`, which hard-links the weight files next to the model in a cache directory.
 *
 * @example
 * ```ts
 * import { Graph } from "./ir.ts";
 * import { toModelProto } from "./onnx.ts";
 * const g = new Graph();
 * const a = g.input("a", "f32", ["batch", 3]);
 * const b = g.input("b", "f32", ["batch", 3]);
 * const [sum] = g.node("Add", [a, b], {}, [{ dtype: "f32", shape: ["batch", 3] }]);
 * const bytes = toModelProto(g, { sum });
 * if (bytes.length === 0) throw new Error("empty model");
 * ```
 *
 * @module
 */
import * as path from "node:path";
import type { DType } from "../tensor/dtype.ts";
import { DTYPE_BYTES } from "../tensor/dtype.ts";
import { shapeSize, type Tensor } from "../tensor/tensor.ts";
import type { Attr, Dim, Graph, Node, Value } from "./ir.ts";
import { ProtoWriter } from "./protobuf.ts";

/** The ONNX IR version written into every model (ONNX Runtime 1.30 accepts up to 13). */
export const IR_VERSION = 10;

/** The default `ai.onnx` opset version. */
export const DEFAULT_OPSET = 21;

/** ONNX `TensorProto.DataType` code of each dtype. */
export const ONNX_DTYPE: Readonly<Record<DType, number>> = {
  f32: 1,
  u8: 2,
  i32: 6,
  i64: 7,
  bool: 9,
  f16: 10,
  f64: 11,
  bf16: 16,
};

/** Options of {@linkcode toModelProto}. */
export interface OnnxOptions {
  /** `ai.onnx` opset version (default {@linkcode DEFAULT_OPSET}). */
  opset?: number;
  /** `producer_name` of the model (default `"@liveedit/core"`). */
  producer?: string;
  /** Name of the ONNX graph (default `"liveedit"`). */
  graphName?: string;
  /**
   * Maps the `path` of an external initializer's file to its `location` in the model, a
   * relative path below the model's directory (no `..`, not absolute). Called once per
   * external initializer that the outputs depend on, in value-id order. Required when the
   * outputs depend on an external initializer; `compile.ts` has `relativeTo(dir)` for a model
   * written into `dir`, and `compileModel` sets it for you.
   */
  externalLocation?: (file: string, value: Value) => string;
}

/** Requested graph outputs: ONNX output name → value, as an object or as ordered pairs. */
export type Outputs = Record<string, Value> | readonly (readonly [string, Value])[];

// Field numbers of onnx.proto (only the fields written here).
const MODEL = { irVersion: 1, producerName: 2, graph: 7, opsetImport: 8 } as const;
const OPSET = { domain: 1, version: 2 } as const;
const GRAPH = { node: 1, name: 2, initializer: 5, input: 11, output: 12 } as const;
const NODE = { input: 1, output: 2, name: 3, opType: 4, attribute: 5 } as const;
const ATTR = { name: 1, f: 2, i: 3, s: 4, t: 5, floats: 7, ints: 8, type: 20 } as const;
const ATTR_TYPE = { float: 1, int: 2, string: 3, tensor: 4, floats: 6, ints: 7 } as const;
const TENSOR = {
  dims: 1,
  dataType: 2,
  name: 8,
  rawData: 9,
  externalData: 13,
  dataLocation: 14,
} as const;
const DATA_LOCATION_EXTERNAL = 1;
const ENTRY = { key: 1, value: 2 } as const;
const VALUE_INFO = { name: 1, type: 2 } as const;
const TYPE = { tensorType: 1 } as const;
const TENSOR_TYPE = { elemType: 1, shape: 2 } as const;
const SHAPE = { dim: 1 } as const;
const DIM = { value: 1, param: 2 } as const;

const MAX_PROTO_BYTES = 2 ** 31 - 1;
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Serializes the part of `graph` that `outputs` depend on as an ONNX `ModelProto`
 * (IR version {@linkcode IR_VERSION}, one `ai.onnx` opset import).
 *
 * When a value is requested under several names, or a requested value is a graph input or an
 * initializer, `Identity` nodes give each output its own name.
 *
 * Throws when an output name is empty, repeated or equal to a graph input's name, when a
 * value belongs to another graph, when a shape or attribute cannot be encoded, or when an
 * external data location would not be loadable (see the module docs).
 */
export function toModelProto(
  graph: Graph,
  outputs: Outputs,
  options: OnnxOptions = {},
): Uint8Array {
  const requested = normalizeOutputs(graph, outputs);
  const { nodes, leaves } = liveSubgraph(graph, requested.map(([, v]) => v));
  const names = nameValues(requested, nodes, leaves);
  const opset = options.opset ?? DEFAULT_OPSET;
  if (!Number.isInteger(opset) || opset < 1) {
    throw new Error(`toModelProto: invalid opset ${opset}`);
  }
  const locate = externalLocator(options);

  const w = new ProtoWriter(64 * 1024);
  w.int64(MODEL.irVersion, IR_VERSION);
  w.string(MODEL.producerName, options.producer ?? "@liveedit/core");
  w.message(MODEL.graph, (g) => {
    const nodeIndex = new Map(graph.nodes.map((n, i) => [n, i]));
    for (const node of nodes) {
      writeNode(g, `n${nodeIndex.get(node)}_${node.op}`, node, names);
    }
    requested.forEach(([key, v], k) => {
      if (names.get(v) !== key) writeIdentity(g, `out${k}_Identity`, names.get(v)!, key);
    });
    g.string(GRAPH.name, options.graphName ?? "liveedit");
    for (const v of leaves) {
      const name = names.get(v)!;
      const source = v.source;
      if (source.kind === "constant") {
        g.message(GRAPH.initializer, (t) => writeTensor(t, source.tensor, name));
      } else if (source.kind === "external") {
        const location = locate(v);
        g.message(GRAPH.initializer, (t) => writeExternalTensor(t, v, name, location));
      }
    }
    for (const v of graph.inputs.values()) {
      if (leaves.includes(v)) {
        g.message(
          GRAPH.input,
          (vi) =>
            writeValueInfo(vi, v.describe(), v, v.source.kind === "input" ? v.source.name : ""),
        );
      }
    }
    for (const [key, v] of requested) {
      g.message(GRAPH.output, (vi) => writeValueInfo(vi, `output ${JSON.stringify(key)}`, v, key));
    }
  });
  w.message(MODEL.opsetImport, (o) => {
    o.string(OPSET.domain, "");
    o.int64(OPSET.version, opset);
  });
  if (w.length > MAX_PROTO_BYTES) {
    throw new Error(
      `toModelProto: the model is ${w.length} bytes, over the 2 GiB protobuf limit; store large ` +
        `weights as external data (Graph.external) instead of constants`,
    );
  }
  return w.finish();
}

function normalizeOutputs(graph: Graph, outputs: Outputs): [string, Value][] {
  const pairs: [string, Value][] = Array.isArray(outputs)
    ? outputs.map(([k, v]) => [k, v])
    : Object.entries(outputs as Record<string, Value>);
  if (pairs.length === 0) throw new Error("toModelProto: no outputs requested");
  const seen = new Set<string>();
  for (const [key, v] of pairs) {
    if (key === "") throw new Error("toModelProto: an output name is empty");
    if (seen.has(key)) throw new Error(`toModelProto: output name ${JSON.stringify(key)} repeated`);
    seen.add(key);
    if (v.graph !== graph) {
      throw new Error(
        `toModelProto: output ${JSON.stringify(key)} ${v.describe()} belongs to another graph`,
      );
    }
    if (graph.inputs.has(key) && graph.inputs.get(key) !== v) {
      throw new Error(
        `toModelProto: output name ${JSON.stringify(key)} is also the name of a graph input`,
      );
    }
    if (graph.inputs.get(key) === v) {
      throw new Error(
        `toModelProto: output ${JSON.stringify(key)} is graph input ${JSON.stringify(key)} ` +
          `itself; ONNX needs distinct input and output names, request it under another name`,
      );
    }
  }
  return pairs;
}

/** The nodes (in graph order) and the leaf values (by id) that `roots` depend on. */
function liveSubgraph(graph: Graph, roots: Value[]): { nodes: Node[]; leaves: Value[] } {
  const seen = new Set<Value>();
  const liveNodes = new Set<Node>();
  const leaves: Value[] = [];
  const stack = [...roots];
  while (stack.length > 0) {
    const v = stack.pop()!;
    if (seen.has(v)) continue;
    seen.add(v);
    if (v.source.kind !== "node") {
      leaves.push(v);
      continue;
    }
    const node = v.source.node;
    if (liveNodes.has(node)) continue;
    liveNodes.add(node);
    for (const input of node.inputs) if (input !== null) stack.push(input);
  }
  leaves.sort((a, b) => a.id - b.id);
  return { nodes: graph.nodes.filter((n) => liveNodes.has(n)), leaves };
}

/** Assigns every emitted value its ONNX name (see the module docs for the scheme). */
function nameValues(
  requested: [string, Value][],
  nodes: Node[],
  leaves: Value[],
): Map<Value, string> {
  const names = new Map<Value, string>();
  const taken = new Set<string>();
  const assign = (v: Value, name: string) => {
    names.set(v, name);
    taken.add(name);
  };
  for (const v of leaves) if (v.source.kind === "input") assign(v, v.source.name);
  for (const [key] of requested) taken.add(key);
  for (const [key, v] of requested) {
    if (v.source.kind === "node" && !names.has(v)) names.set(v, key);
  }
  const fresh = (v: Value, preferred: string) => {
    let name = preferred;
    while (taken.has(name)) name = `${name}_${v.id}`;
    assign(v, name);
  };
  for (const v of leaves) {
    if (v.source.kind === "constant") fresh(v, v.source.name ?? `v${v.id}`);
    else if (v.source.kind === "external") fresh(v, v.source.name);
  }
  for (const node of nodes) {
    for (const v of node.outputs) if (!names.has(v)) fresh(v, `v${v.id}`);
  }
  return names;
}

function writeNode(w: ProtoWriter, name: string, node: Node, names: Map<Value, string>): void {
  w.message(GRAPH.node, (n) => {
    for (const v of node.inputs) n.string(NODE.input, v === null ? "" : names.get(v)!);
    for (const v of node.outputs) n.string(NODE.output, names.get(v)!);
    n.string(NODE.name, name);
    n.string(NODE.opType, node.op);
    for (const key of Object.keys(node.attrs).sort()) {
      n.message(NODE.attribute, (a) => writeAttr(a, key, node.attrs[key], name));
    }
  });
}

function writeIdentity(w: ProtoWriter, name: string, input: string, output: string): void {
  w.message(GRAPH.node, (n) => {
    n.string(NODE.input, input);
    n.string(NODE.output, output);
    n.string(NODE.name, name);
    n.string(NODE.opType, "Identity");
  });
}

function writeAttr(w: ProtoWriter, key: string, attr: Attr, node: string): void {
  const where = `node ${node} attribute ${JSON.stringify(key)}`;
  w.string(ATTR.name, key);
  if ("int" in attr) {
    w.int64(ATTR.i, checkInt(attr.int, where));
    w.int64(ATTR.type, ATTR_TYPE.int);
  } else if ("float" in attr) {
    w.float(ATTR.f, attr.float);
    w.int64(ATTR.type, ATTR_TYPE.float);
  } else if ("ints" in attr) {
    w.packedVarints(ATTR.ints, attr.ints.map((x) => checkInt(x, where)));
    w.int64(ATTR.type, ATTR_TYPE.ints);
  } else if ("floats" in attr) {
    w.packedFloats(ATTR.floats, attr.floats);
    w.int64(ATTR.type, ATTR_TYPE.floats);
  } else if ("string" in attr) {
    w.string(ATTR.s, attr.string);
    w.int64(ATTR.type, ATTR_TYPE.string);
  } else if ("tensor" in attr) {
    w.message(ATTR.t, (t) => writeTensor(t, attr.tensor, ""));
    w.int64(ATTR.type, ATTR_TYPE.tensor);
  } else {
    throw new Error(`toModelProto: ${where} has an unknown kind ${JSON.stringify(attr)}`);
  }
}

function checkInt(x: number, where: string): number {
  if (!Number.isSafeInteger(x)) throw new Error(`toModelProto: ${where}: ${x} is not an integer`);
  return x;
}

function writeTensor(w: ProtoWriter, tensor: Tensor, name: string): void {
  if (!LITTLE_ENDIAN) throw new Error("toModelProto: raw tensor data needs a little-endian host");
  w.packedVarints(TENSOR.dims, tensor.shape);
  w.int64(TENSOR.dataType, ONNX_DTYPE[tensor.dtype]);
  if (name !== "") w.string(TENSOR.name, name);
  const { buffer, byteOffset, byteLength } = tensor.data;
  w.bytes(TENSOR.rawData, new Uint8Array(buffer, byteOffset, byteLength));
}

function writeExternalTensor(w: ProtoWriter, v: Value, name: string, location: string): void {
  if (v.source.kind !== "external") {
    throw new Error(`toModelProto: ${v.describe()} is not external`);
  }
  const { offset, length, path: file } = v.source.data;
  const shape = v.shape as number[];
  const expected = shapeSize(shape) * DTYPE_BYTES[v.dtype];
  if (!Number.isSafeInteger(offset) || offset < 0) {
    throw new Error(
      `toModelProto: external ${JSON.stringify(name)} (${file}): bad offset ${offset}`,
    );
  }
  if (length !== expected) {
    throw new Error(
      `toModelProto: external ${JSON.stringify(name)} (${file}): length ${length} bytes but ` +
        `${v.dtype}[${shape.join(", ")}] needs ${expected}`,
    );
  }
  w.packedVarints(TENSOR.dims, shape);
  w.int64(TENSOR.dataType, ONNX_DTYPE[v.dtype]);
  w.string(TENSOR.name, name);
  const entry = (key: string, value: string) =>
    w.message(TENSOR.externalData, (e) => {
      e.string(ENTRY.key, key);
      e.string(ENTRY.value, value);
    });
  entry("location", location);
  entry("offset", String(offset));
  entry("length", String(length));
  w.int64(TENSOR.dataLocation, DATA_LOCATION_EXTERNAL);
}

function writeValueInfo(w: ProtoWriter, what: string, v: Value, name: string): void {
  w.string(VALUE_INFO.name, name);
  w.message(VALUE_INFO.type, (t) =>
    t.message(TYPE.tensorType, (tt) => {
      tt.int64(TENSOR_TYPE.elemType, ONNX_DTYPE[v.dtype]);
      tt.message(TENSOR_TYPE.shape, (s) => {
        for (const d of v.shape) s.message(SHAPE.dim, (dim) => writeDim(dim, d, what));
      });
    }));
}

function writeDim(w: ProtoWriter, d: Dim, what: string): void {
  if (typeof d === "string") {
    if (d === "") throw new Error(`toModelProto: ${what} has an empty dim name`);
    w.string(DIM.param, d);
  } else {
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new Error(`toModelProto: ${what} has invalid dim ${d}`);
    }
    w.int64(DIM.value, d);
  }
}

/** Builds the function giving each external value its `location` (see {@linkcode OnnxOptions}). */
function externalLocator(options: OnnxOptions): (v: Value) => string {
  return (v) => {
    if (v.source.kind !== "external") {
      throw new Error(`toModelProto: ${v.describe()} is not external`);
    }
    const { name, data } = v.source;
    const what = `external initializer ${JSON.stringify(name)} (file ${data.path})`;
    if (options.externalLocation === undefined) {
      throw new Error(
        `toModelProto: ${what} needs options.externalLocation (relativeTo(dir) of compile.ts ` +
          `for a model written into dir); compileModel sets it for you`,
      );
    }
    const location = options.externalLocation(data.path, v);
    checkLocation(location, what);
    return location;
  };
}

function checkLocation(location: string, what: string): void {
  const parts = location.split(/[\\/]/);
  if (
    location === "" || path.posix.isAbsolute(location) || path.win32.isAbsolute(location) ||
    parts.includes("..")
  ) {
    throw new Error(
      `toModelProto: ${what}: location ${JSON.stringify(location)} must be a relative path ` +
        `below the model's directory (not absolute, no "..")`,
    );
  }
}

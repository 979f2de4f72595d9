/**
 * Conversion between host tensors and `onnxruntime-node` tensors. Both directions share the
 * underlying memory (no copy).
 *
 * float16 under Deno: Deno defines `globalThis.Float16Array`, so onnxruntime-common stores
 * 'float16' tensor data as a `Float16Array` (it wraps a given `Uint16Array` in one). The
 * native binding of onnxruntime-node does not recognise `Float16Array` as a typed array and
 * rejects such inputs ("not enough space: expected 6, got 0"). {@linkcode toOrt} therefore
 * builds float16 tensors as 'uint16' tensors over the raw bits and relabels their `type` as
 * 'float16', which the binding accepts. Outputs may arrive as `Float16Array` (or `Uint16Array`
 * where Float16Array is absent); {@linkcode fromOrt} views either as bits.
 *
 * bfloat16: onnxruntime-node 1.30 has no 'bfloat16' tensor type (onnxruntime-common throws
 * "Unsupported tensor type: bfloat16", and sessions with bfloat16 inputs or outputs fail with
 * "Unsupported data type: 16"), so bf16 tensors throw here: cast them to f32 on the host and
 * keep bf16 inside the graph behind Cast nodes.
 *
 * @module
 */
import * as ort from "onnxruntime-node";
import { allocate, type DType, type DTypeArrays } from "./dtype.ts";
import { Tensor } from "./tensor.ts";

/** onnxruntime's element type names for our dtypes (bf16 has none). */
const ORT_TYPES = {
  f32: "float32",
  f64: "float64",
  f16: "float16",
  i64: "int64",
  i32: "int32",
  u8: "uint8",
  bool: "bool",
} as const satisfies Partial<Record<DType, ort.Tensor.Type>>;

const BF16_MESSAGE = "onnxruntime-node has no bfloat16 tensors; cast to f32 on the host " +
  '(cast(t, "f32")) and convert inside the graph with a Cast node';

/** The onnxruntime type name of `dtype`; throws for bf16, which onnxruntime-node lacks. */
export function ortType(dtype: DType): ort.Tensor.Type {
  if (dtype === "bf16") throw new Error(BF16_MESSAGE);
  return ORT_TYPES[dtype];
}

/** Our dtype for an onnxruntime type name; throws naming the type when there is none. */
export function dtypeOfOrt(type: string): DType {
  for (const [dtype, name] of Object.entries(ORT_TYPES)) if (name === type) return dtype as DType;
  if (type === "bfloat16") throw new Error(BF16_MESSAGE);
  throw new Error(`onnxruntime tensor type '${type}' has no host dtype`);
}

/**
 * An `ort.Tensor` over the same memory as `t` (f16 as raw bits, see the module note; bf16
 * throws). `name` labels errors.
 *
 * @example
 * ```ts
 * import { Tensor } from "./tensor.ts";
 * import { toOrt } from "./ort.ts";
 * const o = toOrt(new Tensor("f32", [2], new Float32Array([1, 2])));
 * if (o.type !== "float32" || o.dims[0] !== 2) throw new Error("toOrt");
 * ```
 */
export function toOrt(t: Tensor, name = "tensor"): ort.Tensor {
  if (t.dtype === "bf16") throw new Error(`${name}: ${BF16_MESSAGE}`);
  if (t.dtype === "f16") {
    const o = new ort.Tensor("uint16", t.data as Uint16Array, t.shape);
    Object.defineProperty(o, "type", { value: "float16", enumerable: true });
    return o;
  }
  return new ort.Tensor(ortType(t.dtype), t.data as ort.Tensor.DataType, t.shape);
}

/**
 * A host tensor over the data of the CPU `ort.Tensor` `o` (float16 as raw bits). `name`
 * labels errors (e.g. the output name).
 */
export function fromOrt(o: ort.Tensor, name = "tensor"): Tensor {
  if (o.location !== "cpu") {
    throw new Error(`${name}: ort tensor lives on '${o.location}', not the CPU`);
  }
  const dtype = dtypeOfOrt(o.type);
  const dims = o.dims.map(Number);
  const data = o.data as unknown as ArrayBufferView & { length: number };
  if (dtype === "f16") {
    return new Tensor("f16", dims, new Uint16Array(data.buffer, data.byteOffset, data.length));
  }
  const expected = allocate(dtype, 0).constructor;
  if (data.constructor !== expected) {
    throw new Error(
      `${name}: ort ${o.type} tensor holds ${data.constructor.name}, not ${expected.name}`,
    );
  }
  return new Tensor(dtype, dims, data as unknown as DTypeArrays[typeof dtype]);
}

/**
 * Checks one op on a device: its forward against the host reference, and its gradient rule
 * against central finite differences in float64.
 *
 * The gradient of `sum(out ⊙ seed)` (a fixed random `seed`) is compared with finite
 * differences taken on the device itself in f64 cases, and on the float64 host reference in
 * cases that run in f32 because ONNX Runtime's CPU provider has no f64 kernel for the op.
 * Errors are relative: `max|a − b| / max|b|` over the whole tensor.
 *
 * @module
 */
import type { Tensor } from "../../tensor/tensor.ts";
import { Rng } from "../../tensor/rng.ts";
import { storeNumbers, toNumbers } from "../../tensor/elements.ts";
import { relErr } from "../../tensor/compare.ts";
import { Graph, type Value } from "../ir.ts";
import { grad } from "../grad.ts";
import { toModelProto } from "../onnx.ts";
import * as op from "../ops.ts";
import type { Session } from "../../runtime/session.ts";
import type { OpCase } from "./case.ts";
import { caseInputs } from "./case.ts";

/** Loads models on the device under test (a `DeviceWorker` or a local loader). */
export interface ModelLoader {
  /** Creates a session from ONNX bytes. */
  load(model: Uint8Array): Promise<Session>;
}

/** The outcome of checking one case. */
export interface CheckResult {
  /** Case name. */
  readonly name: string;
  /** ONNX ops the case exercises. */
  readonly ops: readonly string[];
  /** Dtype the case ran in on the device. */
  readonly dtype: "f64" | "f32";
  /** Relative error of the forward output against the host reference. */
  readonly forwardRelErr: number;
  /** Worst relative error of the input gradients against finite differences (0 if none). */
  readonly gradRelErr: number;
  /** Whether both errors are within the case's bounds. */
  readonly pass: boolean;
}

/**
 * Bounds: f64 cases must match to 1e-8 (forward; the worst measured on ONNX Runtime's CPU
 * provider is tanh-GELU at 5.9e-9) and 1e-6 (gradient), f32 cases to 1e-5 (forward) and 1e-3
 * (gradient).
 */
export const BOUNDS = {
  f64: { forward: 1e-8, grad: 1e-6 },
  f32: { forward: 1e-5, grad: 1e-3 },
} as const;

const STEP = 1e-6;

/** Runs one case on `loader`'s device. */
export async function checkCase(c: OpCase, loader: ModelLoader, seed = 0): Promise<CheckResult> {
  const rng = new Rng(seed);
  const hostInputs = caseInputs(c, rng);
  const g = new Graph();
  const values = c.inputs.map((spec, i) =>
    g.input(`x${i}`, spec.dtype ?? c.dtype, spec.dims ?? hostInputs[i].shape)
  );
  const out = c.build(...values);
  const expected = c.reference(...hostInputs);
  const seedTensor = randomLike(expected, c.dtype, rng);
  const seedValue = g.input("seed", c.dtype, out.shape);
  const loss = op.reduceSum(op.mul(op.cast(out, c.dtype), seedValue));
  const wrt = differentiable(c, values);
  const grads = c.noGrad ? [] : grad(loss, wrt.map((i) => values[i]));
  const outputs: Record<string, Value> = { out, loss };
  grads.forEach((v, k) => (outputs[`g${k}`] = v));

  const feeds: Record<string, Tensor> = { seed: seedTensor };
  hostInputs.forEach((t, i) => (feeds[`x${i}`] = t));
  const session = await loader.load(toModelProto(g, outputs));
  const lossOnly = await loader.load(toModelProto(g, { loss }));
  try {
    const result = await session.run(feeds);
    const forwardRelErr = relErr(result.out, expected);
    let gradRelErr = 0;
    for (let k = 0; k < wrt.length; k++) {
      const i = wrt[k];
      const fd = c.dtype === "f64"
        ? await deviceDifferences(lossOnly, feeds, `x${i}`)
        : referenceDifferences(c, hostInputs, i, seedTensor);
      gradRelErr = Math.max(gradRelErr, relErr(result[`g${k}`], fd));
    }
    const bound = BOUNDS[c.dtype];
    const pass = forwardRelErr <= bound.forward && gradRelErr <= bound.grad;
    return { name: c.name, ops: c.ops, dtype: c.dtype, forwardRelErr, gradRelErr, pass };
  } finally {
    await session.release();
    await lossOnly.release();
  }
}

function differentiable(c: OpCase, values: readonly Value[]): number[] {
  if (c.noGrad) return [];
  return values.map((v, i) => (c.inputs[i].noGrad || !["f32", "f64"].includes(v.dtype) ? -1 : i))
    .filter((i) => i >= 0);
}

function randomLike(t: Tensor, dtype: "f32" | "f64", rng: Rng): Tensor {
  const values = Float64Array.from({ length: t.size }, () => rng.uniform() * 2 - 1);
  return storeNumbers(dtype, t.shape, values);
}

/** Central differences of the device's loss w.r.t. every element of feed `name`. */
async function deviceDifferences(
  lossOnly: Session,
  feeds: Record<string, Tensor>,
  name: string,
): Promise<Tensor> {
  const base = feeds[name];
  const values = toNumbers(base);
  const out = new Float64Array(values.length);
  const at = async (i: number, x: number) => {
    const v = values.slice();
    v[i] = x;
    const r = await lossOnly.run({ ...feeds, [name]: storeNumbers(base.dtype, base.shape, v) });
    return toNumbers(r.loss)[0];
  };
  for (let i = 0; i < values.length; i++) {
    const h = STEP * Math.max(1, Math.abs(values[i]));
    out[i] = ((await at(i, values[i] + h)) - (await at(i, values[i] - h))) / (2 * h);
  }
  return storeNumbers("f64", base.shape, out);
}

/** Central differences of `sum(reference ⊙ seed)` in float64 w.r.t. input `index`. */
function referenceDifferences(
  c: OpCase,
  inputs: readonly Tensor[],
  index: number,
  seed: Tensor,
): Tensor {
  const seedValues = toNumbers(seed);
  const base = inputs[index];
  const values = toNumbers(base);
  const loss = (v: Float64Array) => {
    const xs = inputs.map((t, i) => (i === index ? storeNumbers("f64", t.shape, v) : asF64(t)));
    const y = toNumbers(c.reference(...xs));
    return y.reduce((s, yi, i) => s + yi * seedValues[i], 0);
  };
  const out = new Float64Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const h = STEP * Math.max(1, Math.abs(values[i]));
    const plus = values.slice();
    const minus = values.slice();
    plus[i] += h;
    minus[i] -= h;
    out[i] = (loss(plus) - loss(minus)) / (2 * h);
  }
  return storeNumbers("f64", base.shape, out);
}

function asF64(t: Tensor): Tensor {
  return t.dtype === "f32" ? storeNumbers("f64", t.shape, toNumbers(t)) : t;
}

/**
 * Adam, exactly as PyTorch's `torch.optim.Adam` (amsgrad=False, maximize=False), over named
 * float32 parameters updated in place.
 *
 * Per element, at step `t` (1-based):
 * ```
 * g = grad + weightDecay * p            (L2, PyTorch's weight_decay; default 0)
 * m = beta1 * m + (1 - beta1) * g
 * v = beta2 * v + (1 - beta2) * g^2
 * denom = sqrt(v) / sqrt(1 - beta2^t) + eps
 * p = p - lr / (1 - beta1^t) * m / denom
 * ```
 * Each element is computed in float64 and `m`, `v` and `p` are stored as float32 (PyTorch keeps
 * all three as float32 tensors; the update reads the stored float32 `m` and `v`, as PyTorch
 * does). Results agree with PyTorch to float32 rounding, not bit for bit.
 *
 * @module
 */
import { Tensor } from "../tensor/tensor.ts";

/** A float32 parameter or gradient: a raw array or an f32 host tensor. */
export type F32Param = Float32Array | Tensor<"f32">;

/** Named parameters or gradients. */
export type NamedF32 = ReadonlyMap<string, F32Param> | Readonly<Record<string, F32Param>>;

/** Hyperparameters of {@linkcode Adam}; defaults are PyTorch's. */
export interface AdamOptions {
  /** Learning rate (default 1e-3). */
  lr?: number;
  /** First-moment decay (default 0.9). */
  beta1?: number;
  /** Second-moment decay (default 0.999). */
  beta2?: number;
  /** Added to the bias-corrected sqrt of the second moment (default 1e-8). */
  eps?: number;
  /** L2 penalty added to the gradient, `g + weightDecay * p` (default 0). */
  weightDecay?: number;
}

/**
 * The saved state of an {@linkcode Adam}: the step count (JSON) and the moments as f32 host
 * tensors named `exp_avg.<param>` and `exp_avg_sq.<param>` (PyTorch's names), shaped like the
 * parameters, ready for a safetensors file.
 */
export interface AdamState {
  /** Number of steps taken. */
  step: number;
  /** `exp_avg.<name>` (first moment) and `exp_avg_sq.<name>` (second moment) per parameter. */
  tensors: Record<string, Tensor<"f32">>;
}

interface Slot {
  param: Float32Array;
  shape: readonly number[];
  m: Float32Array;
  v: Float32Array;
}

function entries(named: NamedF32): [string, F32Param][] {
  return named instanceof Map ? [...named.entries()] : Object.entries(named);
}

function arrayOf(x: F32Param, what: string): Float32Array {
  if (x instanceof Float32Array) return x;
  if (x instanceof Tensor && x.dtype === "f32") return x.data;
  throw new Error(`${what} must be a Float32Array or an f32 Tensor`);
}

/**
 * PyTorch's Adam over named f32 parameters, updated in place by {@linkcode Adam.step}.
 *
 * @example
 * ```ts
 * import { Adam } from "./adam.ts";
 * const w = new Float32Array([1, -1]);
 * const opt = new Adam({ w }, { lr: 0.1 });
 * opt.step({ w: new Float32Array([0.5, -2]) });
 * // the first step moves every element by about lr against the sign of its gradient
 * if (Math.abs(w[0] - 0.9) > 1e-6 || Math.abs(w[1] + 0.9) > 1e-6) throw new Error("adam");
 * ```
 */
export class Adam {
  /** The hyperparameters in use (defaults filled in). */
  readonly options: Readonly<Required<AdamOptions>>;
  #slots = new Map<string, Slot>();
  #step = 0;

  /** Tracks `params` (not copied: the arrays are updated in place). */
  constructor(params: NamedF32, options: AdamOptions = {}) {
    const o = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, ...options };
    for (const [k, v] of Object.entries(o)) {
      if (!Number.isFinite(v) || v < 0) {
        throw new Error(`Adam option ${k} must be finite and >= 0, got ${v}`);
      }
    }
    if (o.beta1 >= 1 || o.beta2 >= 1) {
      throw new Error(`Adam betas must be < 1, got ${o.beta1}, ${o.beta2}`);
    }
    this.options = Object.freeze(o);
    for (const [name, p] of entries(params)) {
      const param = arrayOf(p, `parameter '${name}'`);
      const shape = p instanceof Tensor ? p.shape : [param.length];
      const n = param.length;
      this.#slots.set(name, { param, shape, m: new Float32Array(n), v: new Float32Array(n) });
    }
  }

  /** Number of steps taken so far. */
  get stepCount(): number {
    return this.#step;
  }

  /**
   * One Adam update of every parameter from `grads` (exactly the parameter names, same
   * sizes), with learning rate `lr` (default `options.lr`; pass a schedule's value here).
   */
  step(grads: NamedF32, lr: number = this.options.lr): void {
    if (!Number.isFinite(lr) || lr < 0) {
      throw new Error(`Adam.step: lr must be finite and >= 0, got ${lr}`);
    }
    const byName = new Map(entries(grads));
    for (const name of byName.keys()) {
      if (!this.#slots.has(name)) throw new Error(`Adam.step: gradient '${name}' has no parameter`);
    }
    const checked = new Map<string, Float32Array>();
    for (const [name, slot] of this.#slots) {
      const g = byName.get(name);
      if (g === undefined) throw new Error(`Adam.step: missing gradient for parameter '${name}'`);
      const grad = arrayOf(g, `gradient '${name}'`);
      if (grad.length !== slot.param.length) {
        throw new Error(
          `Adam.step: gradient '${name}' has ${grad.length} elements, parameter has ${slot.param.length}`,
        );
      }
      checked.set(name, grad);
    }
    const t = ++this.#step;
    const { beta1: b1, beta2: b2, eps, weightDecay: wd } = this.options;
    const stepSize = lr / (1 - b1 ** t), bc2Sqrt = Math.sqrt(1 - b2 ** t);
    for (const [name, { param, m, v }] of this.#slots) {
      const grad = checked.get(name)!;
      for (let i = 0; i < param.length; i++) {
        const g = grad[i] + wd * param[i];
        m[i] = b1 * m[i] + (1 - b1) * g;
        v[i] = b2 * v[i] + (1 - b2) * g * g;
        param[i] = param[i] - stepSize * m[i] / (Math.sqrt(v[i]) / bc2Sqrt + eps);
      }
    }
  }

  /** A copy of the optimiser state (see {@linkcode AdamState}). */
  state(): AdamState {
    const tensors: Record<string, Tensor<"f32">> = {};
    for (const [name, { shape, m, v }] of this.#slots) {
      tensors[`exp_avg.${name}`] = new Tensor("f32", shape, m.slice());
      tensors[`exp_avg_sq.${name}`] = new Tensor("f32", shape, v.slice());
    }
    return { step: this.#step, tensors };
  }

  /**
   * Restores a state from {@linkcode Adam.state} (copied in). Throws naming the tensor when
   * one is missing, unexpected, not f32 or of the wrong size, or when `step` is invalid.
   */
  load(state: AdamState): void {
    if (!Number.isSafeInteger(state.step) || state.step < 0) {
      throw new Error(`Adam.load: step must be an integer >= 0, got ${state.step}`);
    }
    const expected = new Set<string>();
    for (const [name, slot] of this.#slots) {
      for (
        const [key, dst] of [[`exp_avg.${name}`, slot.m], [`exp_avg_sq.${name}`, slot.v]] as const
      ) {
        expected.add(key);
        const t = state.tensors[key];
        if (t === undefined) throw new Error(`Adam.load: state tensor '${key}' is missing`);
        if (t.dtype !== "f32" || t.size !== dst.length) {
          throw new Error(
            `Adam.load: state tensor '${key}' is ${t.dtype}[${
              t.shape.join(", ")
            }], expected f32 with ${dst.length} elements`,
          );
        }
      }
    }
    for (const key of Object.keys(state.tensors)) {
      if (!expected.has(key)) throw new Error(`Adam.load: unexpected state tensor '${key}'`);
    }
    for (const [name, slot] of this.#slots) {
      slot.m.set(state.tensors[`exp_avg.${name}`].data);
      slot.v.set(state.tensors[`exp_avg_sq.${name}`].data);
    }
    this.#step = state.step;
  }
}

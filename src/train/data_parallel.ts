/**
 * Data-parallel training on the host side (`train --replicas R`): a batch of `b` samples is cut
 * into R contiguous slices ({@linkcode replicaSlices}), each replica computes the loss terms and
 * gradients of its slice, and {@linkcode combineReplicas} adds them up in replica order, each
 * weighted by its share of the batch, so that the result is the whole batch's mean loss and its
 * gradient, the same whatever order the replicas finish in. One optimiser step follows.
 *
 * Why the weights: every loss part of a step is a mean over the rows of the batch; a replica
 * reports the mean over its `n_k` rows, so the batch's mean is `Σ_k (n_k / b) · mean_k` (not
 * the plain mean of the replicas' means, which would differ when the slices differ in size).
 *
 * @example
 * ```ts
 * import { combineReplicas, replicaSlices } from "./data_parallel.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * const slices = replicaSlices(3, 2); // [0, 2) and [2, 3)
 * const g = (v: number) => ({ w: new Tensor("f32", [1], Float32Array.of(v)) });
 * const out = combineReplicas(slices, [{ losses: [3], grads: g(3) }, { losses: [6], grads: g(6) }]);
 * if (out.losses[0] !== 4 || out.grads.w.data[0] !== 4) throw new Error("weighted mean");
 * ```
 *
 * @module
 */
import { Tensor } from "../tensor/tensor.ts";

/** Samples `[start, end)` of a batch. */
export interface Slice {
  /** First sample. */
  readonly start: number;
  /** One past the last sample. */
  readonly end: number;
}

/**
 * Cuts a batch of `size` samples into at most `replicas` contiguous, non-empty slices whose
 * sizes differ by at most one (the first `size mod replicas` one larger); fewer slices when the
 * batch is smaller than the number of replicas (a replica then sits the step out).
 */
export function replicaSlices(size: number, replicas: number): Slice[] {
  for (const [what, v] of [["batch size", size], ["replicas", replicas]] as const) {
    if (!Number.isSafeInteger(v) || v < 1) {
      throw new Error(`replicaSlices: ${what} must be an integer >= 1, got ${v}`);
    }
  }
  const n = Math.min(size, replicas), base = Math.floor(size / n), extra = size % n;
  const out: Slice[] = [];
  for (let k = 0, start = 0; k < n; k++) {
    const end = start + base + (k < extra ? 1 : 0);
    out.push({ start, end });
    start = end;
  }
  return out;
}

/** What one replica computed for its slice: loss values (means over its rows) and gradients. */
export interface ReplicaResult {
  /** Loss values, each a mean over the slice's rows, in a fixed order shared by all replicas. */
  readonly losses: readonly number[];
  /** Gradients of the slice's mean loss, by parameter name. */
  readonly grads: Readonly<Record<string, Tensor<"f32">>>;
}

/**
 * The whole batch's losses and gradients from the replicas' results for `slices` (see the
 * module documentation): `Σ_k (n_k / b) · x_k`, summed in float64 in replica order, the
 * gradients rounded to float32 once. Throws naming the replica and the tensor when the
 * results do not line up.
 */
export function combineReplicas(
  slices: readonly Slice[],
  results: readonly ReplicaResult[],
): { losses: number[]; grads: Record<string, Tensor<"f32">> } {
  if (slices.length !== results.length || slices.length === 0) {
    throw new Error(`combineReplicas: ${results.length} results for ${slices.length} slices`);
  }
  const size = slices.reduce((n, s) => n + s.end - s.start, 0);
  const weights = slices.map((s) => (s.end - s.start) / size);
  const names = Object.keys(results[0].grads);
  const losses = results[0].losses.map(() => 0);
  const sums = new Map<string, Float64Array>();
  for (const name of names) sums.set(name, new Float64Array(results[0].grads[name].size));
  results.forEach((r, k) => {
    if (r.losses.length !== losses.length) {
      throw new Error(
        `combineReplicas: replica ${k} has ${r.losses.length} losses, replica 0 ${losses.length}`,
      );
    }
    r.losses.forEach((v, i) => losses[i] += weights[k] * v);
    const extra = Object.keys(r.grads).find((name) => !sums.has(name));
    if (extra !== undefined) {
      throw new Error(`combineReplicas: replica ${k} has a gradient '${extra}' replica 0 has not`);
    }
    for (const name of names) {
      const g = r.grads[name], acc = sums.get(name)!;
      if (g === undefined || g.size !== acc.length) {
        throw new Error(
          `combineReplicas: replica ${k}'s gradient '${name}' is ${
            g === undefined ? "missing" : `of ${g.size} elements, not ${acc.length}`
          }`,
        );
      }
      const data = g.data, w = weights[k];
      for (let i = 0; i < acc.length; i++) acc[i] += w * data[i];
    }
  });
  const grads: Record<string, Tensor<"f32">> = {};
  for (const name of names) {
    grads[name] = new Tensor(
      "f32",
      results[0].grads[name].shape,
      Float32Array.from(sums.get(name)!),
    );
  }
  return { losses, grads };
}

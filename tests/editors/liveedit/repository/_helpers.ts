/**
 * Shared helpers for the repository tests: temporary directories and deterministic edits whose
 * every element is a function of the edit's seed, so a stored expert can be checked exactly.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Tensor } from "../../../../src/tensor/tensor.ts";
import type {
  Edit,
  ExpertDims,
  StoredExpert,
} from "../../../../src/editors/liveedit/repository/types.ts";

/** Small dims for fast tests. */
export const DIMS: ExpertDims = { e: 2, m: 3, r: 2, d: 5 };

/** Repository init for tests. */
export const INIT = { backbone: "tiny-test", dims: DIMS };

/** Runs `fn` with a fresh temporary directory, removed afterwards. */
export async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "liveedit-repo-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Element `i` of tensor `k` (0..3) of the edit with `seed`. */
function value(seed: number, k: number, i: number): number {
  return Math.fround(seed * 1000 + k * 100 + i * 0.25 - 7);
}

/** A deterministic edit for `seed` (tensors with a leading 1, as the editor makes them). */
export function makeEdit(dims: ExpertDims, seed: number): Edit {
  const t = (k: number, a: number, b: number) =>
    new Tensor("f32", [1, a, b], Float32Array.from({ length: a * b }, (_, i) => value(seed, k, i)));
  return {
    request: {
      prompt: `prompt ${seed} ünïcode`,
      target: `target ${seed}`,
      image: `img/${seed}.jpg`,
    },
    eqr: t(0, dims.e, dims.m),
    evr: t(1, dims.e, dims.m),
    C: t(2, dims.r, dims.d),
    R: t(3, dims.r, dims.d),
  };
}

/** Asserts that `expert` is exactly `makeEdit(dims, seed)` stored with its shapes `[e,m]`/`[r,d]`. */
export function assertIsEdit(expert: StoredExpert, dims: ExpertDims, seed: number): void {
  assert.equal(expert.request.prompt, `prompt ${seed} ünïcode`);
  assert.equal(expert.request.target, `target ${seed}`);
  assert.equal(expert.request.image, `img/${seed}.jpg`);
  const shapes = [[dims.e, dims.m], [dims.e, dims.m], [dims.r, dims.d], [dims.r, dims.d]];
  (["eqr", "evr", "C", "R"] as const).forEach((name, k) => {
    const t = expert[name];
    assert.deepEqual(t.shape, shapes[k], `${name} shape`);
    assert.deepEqual(
      [...t.data],
      Array.from({ length: t.size }, (_, i) => value(seed, k, i)),
      `${name} of seed ${seed}`,
    );
  });
}

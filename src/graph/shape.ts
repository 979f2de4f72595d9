/**
 * Shape inference over static and named dynamic dims.
 *
 * Named dims never broadcast: a dim named `"batch"` only matches `"batch"` or a static 1.
 * That is what makes gradients under broadcasting decidable when the graph is built.
 *
 * @module
 */
import type { Dim } from "./ir.ts";

/** Formats a shape for error messages: `[batch, 4]`. */
export function showShape(shape: readonly Dim[]): string {
  return `[${shape.join(", ")}]`;
}

/** True when two shapes are known to be equal. */
export function sameShape(a: readonly Dim[], b: readonly Dim[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** True when every dim is static. */
export function isStatic(shape: readonly Dim[]): shape is readonly number[] {
  return shape.every((d) => typeof d === "number");
}

/** Numpy-style broadcast of shapes; `op` names the operation in errors. */
export function broadcastShapes(op: string, ...shapes: (readonly Dim[])[]): Dim[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let dim: Dim = 1;
    for (const s of shapes) {
      const d = s[s.length - rank + i] ?? 1;
      if (d === 1 || d === dim) continue;
      if (dim === 1) dim = d;
      else {
        throw new Error(
          `${op}: cannot broadcast shapes ${
            shapes.map(showShape).join(" and ")
          } (dim ${d} vs ${dim})`,
        );
      }
    }
    out.push(dim);
  }
  return out;
}

/** Normalises a possibly negative axis against `rank`; `op` names the operation in errors. */
export function normAxis(op: string, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) {
    throw new Error(`${op}: axis ${axis} is out of range for rank ${rank}`);
  }
  return a;
}

/** Sum of two dims (named dims give a derived name such as `seq+32`). */
export function addDims(a: Dim, b: Dim): Dim {
  if (typeof a === "number" && typeof b === "number") return a + b;
  if (a === 0) return b;
  if (b === 0) return a;
  return `${a}+${b}`;
}

/**
 * Infers the output shape of a reshape to `target`, whose entries are static sizes, names of
 * dims of the input, or one `-1`. Named dims cancel symbolically so `[b, s, 32] → [b, s, 4, -1]`
 * gives `[b, s, 4, 8]`.
 */
export function reshapeShape(input: readonly Dim[], target: readonly Dim[]): Dim[] {
  const where = `reshape ${showShape(input)} → ${showShape(target)}`;
  const names = new Map<string, number>();
  let staticIn = 1;
  for (const d of input) {
    if (typeof d === "number") staticIn *= d;
    else names.set(d, (names.get(d) ?? 0) + 1);
  }
  let staticOut = 1;
  let minusOne = -1;
  target.forEach((d, i) => {
    if (d === -1) {
      if (minusOne >= 0) throw new Error(`${where}: more than one -1`);
      minusOne = i;
    } else if (typeof d === "number") {
      if (!Number.isInteger(d) || d < 0) throw new Error(`${where}: invalid dim ${d}`);
      staticOut *= d;
    } else {
      const n = names.get(d) ?? 0;
      if (n === 0) throw new Error(`${where}: dim '${d}' is not a dim of the input`);
      names.set(d, n - 1);
    }
  });
  const leftover = [...names.values()].some((n) => n > 0);
  if (minusOne < 0) {
    if (leftover || staticIn !== staticOut) throw new Error(`${where}: element counts differ`);
    return [...target];
  }
  if (leftover) throw new Error(`${where}: -1 would hide a dynamic dim; name it instead`);
  if (staticOut === 0 || staticIn % staticOut !== 0) {
    throw new Error(`${where}: ${staticIn} elements do not divide into ${staticOut}`);
  }
  const out = [...target];
  out[minusOne] = staticIn / staticOut;
  return out;
}

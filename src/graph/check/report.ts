/**
 * Summarises op-check results into the doctor's closing JSON line.
 *
 * @module
 */
import type { CheckResult } from "./run.ts";

/** An op case that ran in f32, with its errors. */
export interface F32Entry {
  /** Case name. */
  readonly name: string;
  /** Forward relative error. */
  readonly forwardRelErr: number;
  /** Gradient relative error. */
  readonly gradRelErr: number;
}

/** The doctor's summary. */
export interface DoctorSummary {
  /** Device checked. */
  readonly device: string;
  /** Number of distinct ONNX ops exercised. */
  readonly ops: number;
  /** Number of cases run. */
  readonly cases: number;
  /** Worst forward relative error over the f64 cases. */
  readonly maxForwardRelErr: number;
  /** Worst gradient relative error over the f64 cases. */
  readonly maxGradRelErr: number;
  /** Cases that ran in f32 (no f64 kernel on the device), with their errors. */
  readonly f32: readonly F32Entry[];
  /** Names of failed cases. */
  readonly failed: readonly string[];
  /** True when every case passed. */
  readonly pass: boolean;
}

/** Builds the summary of `results` checked on `device`. */
export function summarize(device: string, results: readonly CheckResult[]): DoctorSummary {
  const f64 = results.filter((r) => r.dtype === "f64");
  const failed = results.filter((r) => !r.pass).map((r) => r.name);
  return {
    device,
    ops: new Set(results.flatMap((r) => r.ops)).size,
    cases: results.length,
    maxForwardRelErr: Math.max(0, ...f64.map((r) => r.forwardRelErr)),
    maxGradRelErr: Math.max(0, ...f64.map((r) => r.gradRelErr)),
    f32: results.filter((r) => r.dtype === "f32").map(({ name, forwardRelErr, gradRelErr }) => ({
      name,
      forwardRelErr,
      gradRelErr,
    })),
    failed,
    pass: failed.length === 0,
  };
}

/** One human-readable line for a result: `ok   MatMul batched   f64  fwd 1.1e-16  grad 2.0e-10`. */
export function formatResult(r: CheckResult): string {
  const e = (x: number) => x.toExponential(1).padStart(8);
  return `${r.pass ? "ok  " : "FAIL"} ${r.name.padEnd(28)} ${r.dtype}  fwd ${
    e(r.forwardRelErr)
  }  grad ${e(r.gradRelErr)}  [${r.ops.join(", ")}]`;
}

/**
 * The op-check table: for every op the graph builder offers, a small case with its inputs,
 * the graph under test and an independent naive reference on host tensors (`case.ts`). The
 * same table drives the test suite and `deno task doctor`.
 *
 * @module
 */
import type { OpCase } from "./case.ts";
import { DATA_CASES } from "./cases_data.ts";
import { MATH_CASES } from "./cases_math.ts";

/** Every case, in the order the doctor prints them. */
export const CASES: readonly OpCase[] = [...MATH_CASES, ...DATA_CASES];

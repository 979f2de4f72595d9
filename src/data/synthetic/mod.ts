/**
 * The synthetic benchmark of `deno task make-synthetic` and `deno task demo`: scenes of drawn
 * shapes ({@linkcode drawScene}), questions about them with true and counterfactual answers,
 * records in the E-VQA layout ({@linkcode syntheticSplit}), written as a data root with PNG
 * images ({@linkcode writeSynthetic}), and the questions with their true answers for training
 * and scoring a model before any edit ({@linkcode answeredExamples}).
 *
 * @example
 * ```ts ignore
 * import { synthetic, loadDataset } from "@liveedit/core";
 * await synthetic.writeSynthetic("data-synthetic", { nTrain: 200, nEval: 20 });
 * const { samples } = await loadDataset("EVQA", "eval", { dataRoot: "data-synthetic" });
 * ```
 *
 * @module
 */
export * from "./answers.ts";
export * from "./generate.ts";
export * from "./questions.ts";
export * from "./scene.ts";
export * from "./write.ts";

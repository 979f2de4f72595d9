/**
 * Questions of the synthetic benchmark: two kinds about a scene (the shapes' colour and kind),
 * each with question wordings (`src`) and different rephrasings (`rephrase`), the true answer
 * of a {@linkcode SceneSpec}, a counterfactual answer (another valid answer of the same kind,
 * the edit target), and text-only questions a language model answers without an image (small
 * sums and successors of number words), for text locality. (Count and position vary in the
 * pictures but are not asked: a tiny VLLM needs far more training to read them.)
 *
 * Every answer is one lower-case word, so one token of the demo's tokenizer.
 *
 * @module
 */
import type { Rng } from "../../tensor/rng.ts";
import { COLORS, pick, type SceneSpec, SHAPES } from "./scene.ts";

/** The kinds of questions about a scene. */
export const QUESTION_KINDS = ["color", "shape"] as const;
/** One of {@linkcode QUESTION_KINDS}. */
export type QuestionKind = typeof QUESTION_KINDS[number];

/** Wordings of each kind: `src` asks the question, `rephrase` asks it differently. */
export const QUESTIONS: Readonly<
  Record<QuestionKind, { readonly src: readonly string[]; readonly rephrase: readonly string[] }>
> = {
  color: {
    src: ["What color is the shape?", "What color are the objects?"],
    rephrase: ["Which colour do the figures in the picture have?", "What colour is shown?"],
  },
  shape: {
    src: ["What shape is shown?", "What kind of shape is in the picture?"],
    rephrase: ["Which figure can you see in the image?", "What is the form of the objects?"],
  },
};

/** The answers of each kind. */
export const ANSWERS: Readonly<Record<QuestionKind, readonly string[]>> = {
  color: Object.keys(COLORS),
  shape: SHAPES,
};

/** Number words, `NUMBER_WORDS[k]` names `k`. */
export const NUMBER_WORDS: readonly string[] = [
  "zero",
  "one",
  "two",
  "three",
  "four",
  "five",
  "six",
  "seven",
  "eight",
  "nine",
];

/** The true answer of a `kind` question about a scene showing `spec`. */
export function answerOf(spec: SceneSpec, kind: QuestionKind): string {
  return spec[kind];
}

/** A uniformly random answer of `kind` other than `truth`. */
export function counterfactual(rng: Rng, kind: QuestionKind, truth: string): string {
  return pick(rng, ANSWERS[kind].filter((a) => a !== truth));
}

/** A text-only question and its answer. */
export interface TextFact {
  /** The question, in E-VQA's `loc` style (`nq question: ...`, no question mark). */
  readonly question: string;
  /** Its one-word answer. */
  readonly answer: string;
}

/**
 * The text-only facts: `what is A plus B` for A, B in 0..4 and `what comes after A` for A in
 * 0..8, with number words.
 */
export function textFacts(): TextFact[] {
  const out: TextFact[] = [];
  for (let a = 0; a <= 4; a++) {
    for (let b = 0; b <= 4; b++) {
      out.push({
        question: `nq question: what is ${NUMBER_WORDS[a]} plus ${NUMBER_WORDS[b]}`,
        answer: NUMBER_WORDS[a + b],
      });
    }
  }
  for (let a = 0; a <= 8; a++) {
    out.push({
      question: `nq question: what comes after ${NUMBER_WORDS[a]}`,
      answer: NUMBER_WORDS[a + 1],
    });
  }
  return out;
}

/**
 * The text of every question, rephrasing and answer (with E-VQA's prompt suffixes), for
 * training a tokenizer whose tokens are these words.
 */
export function vocabularyText(suffixes: readonly string[]): string {
  const parts: string[] = [];
  for (const kind of QUESTION_KINDS) {
    for (const q of [...QUESTIONS[kind].src, ...QUESTIONS[kind].rephrase]) {
      for (const s of suffixes) parts.push(q + s);
    }
    for (const a of ANSWERS[kind]) parts.push(" " + a);
  }
  for (const f of textFacts()) {
    for (const s of suffixes) parts.push(f.question + s);
    parts.push(" " + f.answer);
  }
  return parts.join(" ");
}

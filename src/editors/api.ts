/**
 * What the training loop and the evaluation need from an editor bound to a backbone. LiveEdit
 * implements these (`src/editors/liveedit/`); the tasks (`tasks/train.ts`, `tasks/test_edit.ts`)
 * only see these interfaces, so another editor can plug in by name (`-en`).
 *
 * @module
 */
import type { EditSample, Example } from "../data/sample.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { AdamState } from "../train/adam.ts";

/** Teacher-forced predictions of one example: the argmax ids at the target positions. */
export interface Prediction {
  /** Argmax token ids at the positions that predict the target tokens. */
  readonly predicted: readonly number[];
  /** The target token ids (same length). */
  readonly target: readonly number[];
}

/** A backbone with an editor in front of it, as the evaluation uses it. */
export interface EditingModel {
  /** Editor name (`-en`), e.g. `"liveedit"`. */
  readonly editorName: string;
  /** Backbone name, e.g. `"blip2-opt-2.7b"`. */
  readonly modelName: string;
  /** Applies one edit (image, prompt, target); resolves when it is in effect. */
  edit(request: Example): Promise<void>;
  /** Removes every edit: the model answers as the unedited backbone again. */
  restore(): Promise<void>;
  /** Teacher-forced predictions for a batch of examples (one forward pass each batch). */
  predict(examples: readonly Example[]): Promise<Prediction[]>;
  /** Greedy decoding of up to `maxNewTokens` ids from the prompt (no teacher forcing). */
  generate(example: Example, maxNewTokens: number): Promise<number[]>;
  /** Writes the current edited state (editor weights + experts + requests) to one file. */
  saveState(path: string): Promise<void>;
  /** Frees sessions and devices. */
  close(): Promise<void>;
}

/** What a training checkpoint holds of the trainer (the loop adds step, epoch, RNG, EMA loss). */
export interface TrainerState {
  /** Trainable parameters. */
  readonly weights: Record<string, Tensor<"f32">>;
  /** The optimiser's moments and step count. */
  readonly adam: AdamState;
}

/** The losses of one training step, each part by name (`"rel"`, `"gen"`, `"loc"`, ...). */
export interface StepLosses {
  /** The total that was differentiated. */
  readonly total: number;
  /** Every part, by name. */
  readonly parts: Readonly<Record<string, number>>;
}

/**
 * Host tensors that the frozen backbone computed for one batch (layer-`l_e` representations,
 * pre-edit locality logits, label ids and masks, ...): made by {@linkcode EditorTrainer.prepare}
 * on the extra devices, consumed by {@linkcode EditorTrainer.step} on the training device.
 */
export interface PreparedTrainBatch {
  /** Named host tensors (transferable between workers). */
  readonly tensors: Readonly<Record<string, Tensor>>;
  /** JSON-able side information (ranges, counts, ...). */
  readonly info: unknown;
}

/** An editor being trained on a frozen backbone. */
export interface EditorTrainer {
  /** Names and tensors of the trainable parameters (authors' state-dict names). */
  parameters(): Record<string, Tensor<"f32">>;
  /** Runs the frozen backbone for a batch; safe to call ahead of `step` (the producer does). */
  prepare(batch: readonly EditSample[]): Promise<PreparedTrainBatch>;
  /**
   * One optimisation step on a prepared batch at learning rate `lr`: forward, gradients and
   * the Adam update. Returns every loss part.
   */
  step(batch: PreparedTrainBatch, lr: number): Promise<StepLosses>;
  /** Weights and optimiser state, for checkpoints. */
  state(): TrainerState;
  /** Restores {@linkcode EditorTrainer.state} exactly (resuming gives the same losses). */
  load(state: TrainerState): void;
  /** Frees sessions and devices. */
  close(): Promise<void>;
}

/**
 * What the training loop needs from an editor bound to a frozen backbone: the
 * {@linkcode EditorTrainer} contract. LiveEdit implements it (`src/editors/liveedit/trainer.ts`);
 * the loop (`loop.ts`) and `tasks/train.ts` only see this interface.
 *
 * @module
 */
import type { EditSample } from "../data/sample.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { AdamState } from "./adam.ts";

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

/**
 * LiveEdit (CVPR 2025), the public surface: opening it on a VLLM ({@linkcode openLiveEditModel},
 * {@linkcode createLiveEditTrainer}), the edited model, the trainer, the editor and its expert
 * pool, the editing session over an expert repository, and the configs. The fixture checker
 * (`fixtures.ts`) and the task entry (`entry.ts`) are imported from their own files.
 *
 * @module
 */
export * from "./backbone.ts";
export * from "./editing_model.ts";
export * from "./open.ts";
export * from "./trainer.ts";
export * from "./step_feeds.ts";
export {
  configJson,
  isShippedConfig,
  type LiveEditConfig,
  loadConfig,
  SHIPPED_CONFIGS,
  type ShippedConfigName,
} from "./config.ts";
export { LiveEditor, type LiveEditorOptions, type Routed } from "./editor.ts";
export { ExpertPool } from "./pool.ts";
export {
  DEFAULT_SEGMENT_SIZE,
  SegmentedPool,
  type SegmentedPoolOptions,
} from "./segmented_pool.ts";
export { EditSession, expertDimsOf, type LoadStateOptions, type SessionRouted } from "./session.ts";

/**
 * The expert repository and the editor-state file: where the edits a user made are kept.
 *
 * @module
 */
export { ExpertRepository, type OpenRepositoryOptions } from "./repository.ts";
export { REPOSITORY_FORMAT, type RepositoryInit, type RepositoryManifest } from "./manifest.ts";
export { type LockOwner, RepositoryLockedError } from "./lock.ts";
export {
  type EditorState,
  type EditorStateExpectations,
  type ExpertBatch,
  loadEditorState,
  saveEditorState,
  STATE_FORMAT,
} from "./state.ts";
export type {
  Edit,
  EditRequest,
  ExpertDims,
  ExpertInfo,
  ExpertTensors,
  StoredExpert,
} from "./types.ts";
export { sha256Hex } from "./types.ts";
export { type ExpectedShapes } from "../../../io/named_tensors.ts";

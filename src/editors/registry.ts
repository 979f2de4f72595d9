/**
 * The editors the tasks know by name (`-en`).
 *
 * @module
 */
import type { EditorRegistry } from "./api.ts";
import { LIVEEDIT } from "./liveedit/entry.ts";
import { NONE_EDITOR } from "./none.ts";

/** The editors shipped with the library (`unedited` is another name of `none`). */
export const EDITORS: EditorRegistry = {
  liveedit: LIVEEDIT,
  none: NONE_EDITOR,
  unedited: NONE_EDITOR,
};

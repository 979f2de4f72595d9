/**
 * The editors the tasks know by name (`-en`).
 *
 * @module
 */
import type { EditorRegistry } from "./api.ts";
import { LIVEEDIT } from "./liveedit/entry.ts";

/** The editors shipped with the library. */
export const EDITORS: EditorRegistry = { liveedit: LIVEEDIT };

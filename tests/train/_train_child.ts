/**
 * `deno task train` with the fake editor, slowed down, in a subprocess: the SIGKILL test of
 * `tests/tasks/train_test.ts` kills it mid-run. Arguments are train's; the working directory
 * is the workspace.
 *
 * @module
 */
import { runTrain } from "../../tasks/train.ts";
import { fakeRegistry } from "./_fake_editor.ts";

Deno.exit(await runTrain(Deno.args, { editors: fakeRegistry({ delayMs: 25 }), tty: false }));

/**
 * Replicas of a task as child processes (`test-edit --replicas R`): each replica runs the same
 * task module with its own command line (its device group, its shard), in a process of its own
 * with its devices' Workers, so that the replicas run in parallel and one that dies — a bad
 * device, out of memory, a thrown error, killed — is seen for what it is.
 *
 * {@linkcode runReplicaProcesses} starts them all, passes their output on line by line
 * (prefixed `[replica k <devices>]`), and waits. The first replica that fails stops the run:
 * the others are terminated and waited for, and the error names the replica, its devices, its
 * process id and how it ended (the exit status and its last `error:` line, or the signal). The
 * caller removes what the replicas wrote (they write into its temporary directory), so nothing
 * half-written is left.
 *
 * Why processes and not Workers: a Deno Worker that ends without an error (`self.close()`,
 * `Deno.exit()`, a native abort) tells the main thread nothing, and an out-of-memory error in a
 * Worker ends the whole process; a child process always ends with a status or a signal.
 *
 * A replica started here has `LIVEEDIT_REPLICA_OF` set (to this process's id) and its stdin
 * open; {@linkcode exitWithParent} (called by the task's entry) makes it exit when stdin
 * closes, so the replicas do not outlive a parent that is killed.
 *
 * @module
 */
/** The environment variable that marks a replica process (its value: the parent's pid). */
export const REPLICA_ENV = "LIVEEDIT_REPLICA_OF";

/** One replica to start. */
export interface ReplicaCommand {
  /** Its devices (for messages). */
  readonly devices: readonly string[];
  /** The task's arguments for it. */
  readonly argv: readonly string[];
}

/** Options of {@linkcode runReplicaProcesses}. */
export interface ReplicaProcessOptions {
  /** The task module every replica runs (`deno run -A <entry> <argv>`). */
  readonly entry: string;
  /** The replicas, in order. */
  readonly replicas: readonly ReplicaCommand[];
  /** Their working directory. */
  readonly cwd: string;
  /** Where their output goes, a line at a time (prefixed), and the start lines. */
  readonly print: (line: string) => void;
}

/** A replica process that failed; the message names it (see the module documentation). */
export class ReplicaFailure extends Error {
  /** The replica's index. */
  readonly replica: number;

  /** A failure of replica `replica` with `message`. */
  constructor(replica: number, message: string) {
    super(message);
    this.name = "ReplicaFailure";
    this.replica = replica;
  }
}

/** A started replica. */
interface Running {
  readonly index: number;
  readonly label: string;
  readonly child: Deno.ChildProcess;
  readonly stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly output: Promise<void>;
  readonly errors: string[];
  readonly status: Promise<Deno.CommandStatus>;
}

/** The lines of a byte stream (UTF-8), without their line ends; a last unterminated one too. */
async function* linesOf(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let rest = "";
  for await (const text of stream.pipeThrough(new TextDecoderStream())) {
    const parts = (rest + text).split("\n");
    rest = parts.pop()!;
    for (const line of parts) yield line.replace(/\r$/, "");
  }
  if (rest !== "") yield rest;
}

/** `replica k (devices, pid P)`. */
function describe(r: Running): string {
  return `replica ${r.index} (${r.label}, pid ${r.child.pid})`;
}

/** How a replica ended, in words, with its last error line. */
function ending(status: Deno.CommandStatus, errors: readonly string[]): string {
  if (status.signal !== null) return `was killed by ${status.signal}`;
  const last = errors.at(-1);
  return `exited with status ${status.code}` + (last ? `: ${last}` : "");
}

/**
 * Runs the replicas (see the module documentation); resolves when all succeeded, rejects with a
 * {@linkcode ReplicaFailure} for the first that failed, after stopping the others.
 */
export async function runReplicaProcesses(options: ReplicaProcessOptions): Promise<void> {
  const started: Running[] = [];
  try {
    for (const [index, replica] of options.replicas.entries()) {
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", options.entry, ...replica.argv],
        cwd: options.cwd,
        env: { [REPLICA_ENV]: String(Deno.pid) },
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const label = replica.devices.join(",");
      const errors: string[] = [];
      const relay = async (stream: ReadableStream<Uint8Array>, isError: boolean) => {
        for await (const line of linesOf(stream)) {
          if (isError && /^error: /.test(line)) errors.push(line.slice("error: ".length));
          options.print(`[replica ${index} ${label}] ${line}`);
        }
      };
      started.push({
        index,
        label,
        child,
        stdin: child.stdin.getWriter(),
        output: Promise.all([relay(child.stdout, false), relay(child.stderr, true)]).then(
          () => {},
        ),
        errors,
        status: child.status,
      });
      options.print(`replica ${index} on ${label}: pid ${child.pid}`);
    }
    const failed = await firstFailure(started);
    if (failed !== null) {
      const { replica, status } = failed;
      await replica.output;
      throw new ReplicaFailure(
        replica.index,
        `${describe(replica)} ${ending(status, replica.errors)}; the other replicas were ` +
          "stopped and nothing was written",
      );
    }
    await Promise.all(started.map((r) => r.output));
  } finally {
    await stopAll(started);
  }
}

/** Waits until every replica has ended well, or one has failed: that one. */
async function firstFailure(
  started: readonly Running[],
): Promise<{ replica: Running; status: Deno.CommandStatus } | null> {
  const left = new Set(started);
  while (left.size > 0) {
    const { replica, status } = await Promise.race(
      [...left].map(async (replica) => ({ replica, status: await replica.status })),
    );
    left.delete(replica);
    if (!status.success) return { replica, status };
  }
  return null;
}

/** Terminates the replicas still running and waits for all of them to end. */
async function stopAll(started: readonly Running[]): Promise<void> {
  for (const r of started) {
    await r.stdin.close().catch(() => {});
    try {
      r.child.kill("SIGTERM");
    } catch {
      // it has ended already
    }
  }
  await Promise.allSettled(started.flatMap((r) => [r.status, r.output]));
}

/**
 * In a replica process (`LIVEEDIT_REPLICA_OF` set), exits with status 1 as soon as stdin
 * closes, i.e. when the parent has gone; elsewhere does nothing.
 */
export function exitWithParent(): void {
  if (Deno.env.get(REPLICA_ENV) === undefined) return;
  (async () => {
    try {
      for await (const _ of Deno.stdin.readable) {
        // the parent writes nothing; the stream ends when it closes its end
      }
    } catch {
      // a broken pipe is the parent gone too
    }
    console.error(`error: the parent process ${Deno.env.get(REPLICA_ENV)} has gone`);
    Deno.exit(1);
  })();
}

/**
 * Command-line flags as the original Python scripts take them: short names of several letters
 * (`-en`, `-dna`, `-sci`), long names in kebab or snake case (`--editor-name`, `--editor_name`),
 * `--flag value` and `--flag=value`, lists that take every following value (argparse's
 * `nargs='+'`: `-edvc 0 1`, or `-edvc 0,1`), and `None` for "unset" (`-lkpt None`).
 * `node:util`'s `parseArgs` allows only one-letter short names, hence this parser.
 *
 * @example
 * ```ts
 * import { parseFlags } from "./flags.ts";
 * const flags = parseFlags({
 *   batchSize: { names: ["-bs", "--batch-size"], type: "int", required: true, help: "batch" },
 *   devices: { names: ["-edvc", "--extra-devices"], type: "list", default: [], help: "devices" },
 * }, ["-bs", "8", "--extra_devices", "cpu:1", "cpu:2"]);
 * if (flags.batchSize !== 8 || flags.devices.join() !== "cpu:1,cpu:2") throw new Error();
 * ```
 *
 * @module
 */

/** The value types a flag can have. */
export type FlagType = "string" | "int" | "float" | "boolean" | "list";

/** The TypeScript type of a value of {@linkcode FlagType} `T`. */
export type FlagValue<T extends FlagType> = T extends "string" ? string
  : T extends "int" | "float" ? number
  : T extends "boolean" ? boolean
  : string[];

/** One flag. */
export interface FlagSpec {
  /** Its names, short first: `["-en", "--editor-name"]`; `--a_b` is accepted for `--a-b`. */
  readonly names: readonly string[];
  /** The value type; booleans take no value. */
  readonly type: FlagType;
  /** One line of help. */
  readonly help: string;
  /** Must be given (and not `None`). */
  readonly required?: boolean;
  /** The value when not given (shown in the help). */
  readonly default?: string | number | boolean | readonly string[];
  /** Smallest allowed value of an `int` or `float`. */
  readonly min?: number;
  /** Allowed values of a `string` (case-sensitive). */
  readonly choices?: readonly string[];
  /** The value's name in the help, e.g. `N` or `DIR`. */
  readonly metavar?: string;
  /** Accept `None`/`none` as "not given" (the original's `-lkpt None`, `-ckpt None`). */
  readonly noneable?: boolean;
}

/** Named flag specs. */
export type FlagSpecs = Readonly<Record<string, FlagSpec>>;

/** The parsed values: required flags and flags with a default are always present. */
export type Flags<S extends FlagSpecs> = {
  -readonly [K in keyof S]: S[K] extends { required: true } | { default: unknown }
    ? FlagValue<S[K]["type"]>
    : FlagValue<S[K]["type"]> | undefined;
};

/** A command-line mistake; tasks print it with a hint at `--help` and exit with status 2. */
export class UsageError extends Error {
  /** A usage error with `message`. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** The canonical spelling of a flag name: long names with `_` become `-`. */
function canonical(name: string): string {
  return name.startsWith("--") ? "--" + name.slice(2).replaceAll("_", "-") : name;
}

/** Whether `arg` reads as a flag name rather than a value (`-1` and `-0.5` are values). */
function looksLikeFlag(arg: string): boolean {
  return arg.startsWith("-") && arg.length > 1 && !/^-\d/.test(arg);
}

/**
 * Parses `argv` against `specs` (a set flag named `help` waives the required flags). Throws {@linkcode UsageError} naming the flag for an unknown
 * flag, a missing or malformed value, a value out of range or not among the choices, a flag
 * given twice, a missing required flag, and for positional arguments.
 */
export function parseFlags<S extends FlagSpecs>(specs: S, argv: readonly string[]): Flags<S> {
  const byName = new Map<string, string>();
  for (const [key, spec] of Object.entries(specs)) {
    for (const name of spec.names) {
      const c = canonical(name);
      if (byName.has(c)) throw new Error(`flag ${name} is defined twice`);
      byName.set(c, key);
    }
  }
  const out: Record<string, unknown> = {};
  const seen = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!looksLikeFlag(arg)) {
      throw new UsageError(
        `unexpected argument ${JSON.stringify(arg)} (flags take the form -x VALUE)`,
      );
    }
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
    const name = canonical(eq > 0 ? arg.slice(0, eq) : arg);
    const key = byName.get(name);
    if (key === undefined) {
      throw new UsageError(`unknown flag ${arg.slice(0, eq > 0 ? eq : undefined)}`);
    }
    const spec = specs[key];
    const shown = spec.names.join("/");
    if (seen.has(key)) throw new UsageError(`${shown} is given twice`);
    seen.add(key);
    if (spec.type === "boolean") {
      if (eq > 0) {
        const v = arg.slice(eq + 1).toLowerCase();
        if (!["true", "false", "1", "0"].includes(v)) {
          throw new UsageError(`${shown} takes no value or true/false, got ${JSON.stringify(v)}`);
        }
        out[key] = v === "true" || v === "1";
      } else out[key] = true;
      continue;
    }
    const values: string[] = [];
    if (eq > 0) values.push(arg.slice(eq + 1));
    else {
      while (i + 1 < argv.length && !looksLikeFlag(argv[i + 1])) {
        values.push(argv[++i]);
        if (spec.type !== "list") break;
      }
    }
    if (values.length === 0) throw new UsageError(`${shown} needs a value`);
    if (spec.noneable && values.length === 1 && values[0].toLowerCase() === "none") {
      seen.delete(key);
      continue;
    }
    out[key] = convert(spec, shown, values);
  }
  for (const [key, spec] of Object.entries(specs)) {
    if (out[key] !== undefined) continue;
    if (spec.required && out.help !== true) {
      throw new UsageError(`${spec.names.join("/")} is required`);
    }
    if (spec.default !== undefined) {
      out[key] = Array.isArray(spec.default) ? [...spec.default] : spec.default;
    }
  }
  return out as Flags<S>;
}

function convert(spec: FlagSpec, shown: string, values: string[]): unknown {
  if (spec.type === "list") {
    const items = values.flatMap((v) => v.split(",")).map((v) => v.trim()).filter((v) => v);
    if (items.length === 0) throw new UsageError(`${shown} needs at least one value`);
    return items;
  }
  const v = values[0];
  if (spec.type === "string") {
    if (spec.choices && !spec.choices.includes(v)) {
      throw new UsageError(
        `${shown} must be one of ${spec.choices.join(", ")}, got ${JSON.stringify(v)}`,
      );
    }
    return v;
  }
  const n = Number(v);
  const ok = spec.type === "int"
    ? /^-?\d+$/.test(v) && Number.isSafeInteger(n)
    : v.trim() !== "" && Number.isFinite(n);
  const what = spec.type === "int" ? "an integer" : "a number";
  if (!ok) throw new UsageError(`${shown} must be ${what}, got ${JSON.stringify(v)}`);
  if (spec.min !== undefined && n < spec.min) {
    throw new UsageError(`${shown} must be ${what} >= ${spec.min}, got ${v}`);
  }
  return n;
}

/**
 * The help text: `usage` and `description`, then one entry per flag with its names, value,
 * help and default.
 */
export function formatHelp(usage: string, description: string, specs: FlagSpecs): string {
  const rows = Object.values(specs).map((spec) => {
    const value = spec.type === "boolean"
      ? ""
      : ` ${spec.metavar ?? (spec.type === "list" ? "X [X ...]" : spec.type.toUpperCase())}`;
    const notes: string[] = [];
    if (spec.required) notes.push("required");
    if (spec.choices) notes.push(`one of ${spec.choices.join(", ")}`);
    if (spec.default !== undefined && spec.type !== "boolean") {
      const d = Array.isArray(spec.default) ? spec.default.join(" ") : String(spec.default);
      notes.push(`default ${d === "" ? '""' : d}`);
    }
    return {
      left: spec.names.join(", ") + value,
      right: spec.help + (notes.length ? ` (${notes.join("; ")})` : ""),
    };
  });
  const width = Math.min(34, Math.max(...rows.map((r) => r.left.length)) + 2);
  const lines = rows.map((r) =>
    r.left.length + 2 > width
      ? `  ${r.left}\n  ${" ".repeat(width)}${r.right}`
      : `  ${r.left.padEnd(width)}${r.right}`
  );
  return `usage: ${usage}\n\n${description}\n\noptions:\n${lines.join("\n")}`;
}

/** `-h`/`--help`, which every command has. */
export const HELP_FLAG = {
  help: { names: ["-h", "--help"], type: "boolean", help: "print this help" },
} as const;

/** A command: its name (`deno task <name>`), its help and its flags (with `help`). */
export interface CommandSpec<S extends FlagSpecs> {
  /** The task's name, as in `deno task <name>`. */
  readonly name: string;
  /** The usage line of the help, e.g. `deno task doctor [--device D]`. */
  readonly usage: string;
  /** The description of the help. */
  readonly description: string;
  /** The flags (with `help`, `-h/--help`). */
  readonly flags: S;
}

/**
 * Parses `argv` for `spec`: the flags, or an exit status once the help was printed (0, for
 * `--help`) or a usage error was (2: the error, the usage line and a hint at `--help`, through
 * `printError`).
 *
 * @example
 * ```ts
 * import { parseCommand } from "./flags.ts";
 * const spec = {
 *   name: "demo", usage: "deno task demo [--n N]", description: "A demo.",
 *   flags: {
 *     n: { names: ["--n"], type: "int", default: 1, help: "how many" },
 *     help: { names: ["-h", "--help"], type: "boolean", help: "print this help" },
 *   },
 * } as const;
 * const out: string[] = [];
 * const log = (l: string) => out.push(l);
 * if (parseCommand(spec, ["--nope"], log, log) !== 2 || !out[0].includes("--nope")) {
 *   throw new Error("usage error");
 * }
 * ```
 */
export function parseCommand<S extends FlagSpecs>(
  spec: CommandSpec<S>,
  argv: readonly string[],
  print: (text: string) => void,
  printError: (text: string) => void,
): Flags<S> | number {
  let flags: Flags<S>;
  try {
    flags = parseFlags(spec.flags, argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    printError(
      `error: ${error.message}\nusage: ${spec.usage}\n` +
        `run \`deno task ${spec.name} --help\` for the flags`,
    );
    return 2;
  }
  if ((flags as { help?: boolean }).help) {
    print(formatHelp(spec.usage, spec.description, spec.flags));
    return 0;
  }
  return flags;
}

/**
 * The command line that {@linkcode parseFlags} reads back as `values` (a flag's first long
 * name: `--name=value`, lists joined with commas, `--name` for a set boolean; unset values and
 * false booleans are left out; a flag with short names only: `-x value`), e.g. to start the same task in a child process with a few
 * values changed. List items must not contain commas.
 *
 * @example
 * ```ts
 * import { formatFlags, parseFlags } from "./flags.ts";
 * const specs = {
 *   n: { names: ["-n", "--count"], type: "int", help: "n" },
 *   dvc: { names: ["-dvc", "--device"], type: "list", help: "devices" },
 * } as const;
 * const argv = formatFlags(specs, { n: 3, dvc: ["cpu:0", "cpu:1"] });
 * if (argv.join(" ") !== "--count=3 --device=cpu:0,cpu:1") throw new Error(argv.join(" "));
 * if (parseFlags(specs, argv).n !== 3) throw new Error("round trip");
 * ```
 */
export function formatFlags<S extends FlagSpecs>(
  specs: S,
  values: Partial<Readonly<Record<keyof S, unknown>>>,
): string[] {
  const argv: string[] = [];
  for (const [key, spec] of Object.entries(specs)) {
    const value = values[key as keyof S];
    if (value === undefined || value === false) continue;
    const name = spec.names.find((n) => n.startsWith("--")) ?? spec.names[0];
    if (spec.type === "boolean") {
      argv.push(name);
      continue;
    }
    const items = Array.isArray(value) ? value.map(String) : [String(value)];
    const bad = spec.type === "list" ? items.find((v) => v.includes(",") || v === "") : undefined;
    if (bad !== undefined) {
      throw new Error(`formatFlags: ${name} item ${JSON.stringify(bad)} cannot be written`);
    }
    const text = items.join(",");
    if (name.startsWith("--")) argv.push(`${name}=${text}`);
    else if (!looksLikeFlag(text)) argv.push(name, text);
    else throw new Error(`formatFlags: ${name} has no long name to write ${text} with`);
  }
  return argv;
}

/**
 * Reading fields of a Hugging Face `config.json`, with errors that name the file and the
 * field (`vision_config.hidden_size`), so a model's config parser reads like the list of
 * fields it needs.
 *
 * @example
 * ```ts
 * import { ConfigFields } from "./hf_config.ts";
 * const c = new ConfigFields({ vision_config: { hidden_size: 32 } }, "config.json");
 * const vision = c.section("vision_config");
 * if (vision.int("hidden_size") !== 32) throw new Error("hidden_size");
 * if (vision.number("layer_norm_eps", 1e-5) !== 1e-5) throw new Error("default");
 * ```
 *
 * @module
 */
import { readJsonObject } from "../io/json.ts";

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/** The fields of one JSON object of a config file (the file itself or a nested section). */
export class ConfigFields {
  /** The file the fields come from, for error messages. */
  readonly file: string;
  /** Dotted path of this section inside the file (`""` for the top level). */
  readonly path: string;
  readonly #fields: Record<string, unknown>;

  /** Wraps parsed JSON `json` read from `file`; throws when it is not an object. */
  constructor(json: unknown, file: string, path = "") {
    if (!isObject(json)) {
      throw new Error(`${file}: ${path === "" ? "the config" : `'${path}'`} must be a JSON object`);
    }
    this.file = file;
    this.path = path;
    this.#fields = json;
  }

  /** Reads and parses the JSON file `file`; throws naming the file when it cannot. */
  static async read(file: string): Promise<ConfigFields> {
    return new ConfigFields(await readJsonObject(file), file);
  }

  /** True when the field is present and not `null`. */
  has(name: string): boolean {
    return this.#fields[name] !== undefined && this.#fields[name] !== null;
  }

  /** The raw value of a field (`undefined` when absent). */
  raw(name: string): unknown {
    return this.#fields[name];
  }

  /** The nested object `name`; throws when it is absent or not an object. */
  section(name: string): ConfigFields {
    if (!this.has(name)) throw this.error(name, "is missing");
    return new ConfigFields(this.#fields[name], this.file, this.#qualified(name));
  }

  /** An integer field ≥ `min` (default 1); `fallback` is used when the field is absent. */
  int(name: string, fallback?: number, min = 1): number {
    const v = this.#get(name, fallback);
    if (typeof v !== "number" || !Number.isInteger(v) || v < min) {
      throw this.error(name, `must be an integer >= ${min}, got ${JSON.stringify(v)}`);
    }
    return v;
  }

  /** A finite number field > 0; `fallback` is used when the field is absent. */
  positive(name: string, fallback?: number): number {
    const v = this.#get(name, fallback);
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) {
      throw this.error(name, `must be a positive number, got ${JSON.stringify(v)}`);
    }
    return v;
  }

  /** A finite number field; `fallback` is used when the field is absent. */
  number(name: string, fallback?: number): number {
    const v = this.#get(name, fallback);
    if (typeof v !== "number" || !Number.isFinite(v)) {
      throw this.error(name, `must be a number, got ${JSON.stringify(v)}`);
    }
    return v;
  }

  /** A boolean field; `fallback` is used when the field is absent. */
  bool(name: string, fallback?: boolean): boolean {
    const v = this.#get(name, fallback);
    if (typeof v !== "boolean") {
      throw this.error(name, `must be true or false, got ${JSON.stringify(v)}`);
    }
    return v;
  }

  /** A non-empty string field; `fallback` is used when the field is absent. */
  string(name: string, fallback?: string): string {
    const v = this.#get(name, fallback);
    if (typeof v !== "string" || v === "") {
      throw this.error(name, `must be a non-empty string, got ${JSON.stringify(v)}`);
    }
    return v;
  }

  /** A string field that must be one of `choices`; `fallback` is used when it is absent. */
  oneOf<T extends string>(name: string, choices: readonly T[], fallback?: T): T {
    const v = this.#get(name, fallback);
    if (typeof v !== "string" || !(choices as readonly string[]).includes(v)) {
      throw this.error(
        name,
        `must be one of ${choices.map((c) => JSON.stringify(c)).join(", ")}, got ${
          JSON.stringify(v)
        }`,
      );
    }
    return v as T;
  }

  /** An `Error` naming the file and the field, e.g. `config.json: field 'x' is missing`. */
  error(name: string, problem: string): Error {
    return new Error(`${this.file}: field '${this.#qualified(name)}' ${problem}`);
  }

  #qualified(name: string): string {
    return this.path === "" ? name : `${this.path}.${name}`;
  }

  #get(name: string, fallback: unknown): unknown {
    if (this.has(name)) return this.#fields[name];
    if (fallback === undefined) throw this.error(name, "is missing");
    return fallback;
  }
}

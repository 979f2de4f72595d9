/**
 * Shared helpers for the io tests: temporary directories and hand-built safetensors bytes that
 * follow the format spec without using the library's writer.
 *
 * @module
 */

/** Runs `fn` with a fresh temporary directory, removed afterwards. */
export async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "liveedit-io-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * The bytes of a safetensors file: the little-endian u64 length of `header` (a JSON string,
 * or a value to stringify), the header's UTF-8 bytes, then `data`. `declaredLength` overrides
 * the length prefix, to build files that lie about it.
 */
export function rawSafetensors(
  header: string | Uint8Array | Record<string, unknown>,
  data: Uint8Array = new Uint8Array(0),
  declaredLength?: bigint,
): Uint8Array {
  const json = header instanceof Uint8Array
    ? header
    : new TextEncoder().encode(typeof header === "string" ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, declaredLength ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

/** Little-endian bytes built with a DataView callback over `n` bytes. */
export function leBytes(n: number, fill: (view: DataView) => void): Uint8Array {
  const out = new Uint8Array(n);
  fill(new DataView(out.buffer));
  return out;
}

/** The names of the files in `dir`, sorted. */
export async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

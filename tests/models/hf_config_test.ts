import assert from "node:assert/strict";
import { join } from "node:path";
import { ConfigFields } from "../../src/models/hf_config.ts";

Deno.test("ConfigFields.read names the file when it is missing, malformed or not an object", async () => {
  const dir = await Deno.makeTempDir({ prefix: "liveedit-config-" });
  try {
    const file = join(dir, "config.json");
    await assert.rejects(ConfigFields.read(file), (e: Error) => e.message.startsWith(file));
    await Deno.writeTextFile(file, "{ hidden_size: 3 }");
    await assert.rejects(
      ConfigFields.read(file),
      (e: Error) => e.message.startsWith(`${file}: malformed JSON`),
    );
    await Deno.writeTextFile(file, "[1, 2]");
    await assert.rejects(ConfigFields.read(file), /config\.json: must be a JSON object/);
    await Deno.writeTextFile(file, JSON.stringify({ text_config: { hidden_size: 8 } }));
    const fields = await ConfigFields.read(file);
    assert.equal(fields.section("text_config").int("hidden_size"), 8);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ConfigFields: typed getters, defaults for absent or null fields, errors with the dotted path", () => {
  const c = new ConfigFields(
    { a: 2, eps: 1e-6, act: "gelu", on: false, name: "x", none: null, sub: { n: 1.5 }, list: [1] },
    "cfg.json",
  );
  assert.equal(c.int("a"), 2);
  assert.equal(c.int("zero", 0, 0), 0);
  assert.equal(c.positive("eps"), 1e-6);
  assert.equal(c.oneOf("act", ["gelu", "relu"]), "gelu");
  assert.equal(c.bool("on"), false);
  assert.equal(c.string("name"), "x");
  assert.equal(c.int("none", 7), 7);
  assert.equal(c.has("none"), false);
  assert.equal(c.section("sub").number("n"), 1.5);
  assert.throws(
    () => c.section("sub").int("n"),
    /^Error: cfg\.json: field 'sub\.n' must be an integer >= 1, got 1\.5$/,
  );
  assert.throws(() => c.section("list"), /cfg\.json: 'list' must be a JSON object/);
  assert.throws(() => c.section("missing"), /cfg\.json: field 'missing' is missing/);
  assert.throws(
    () => c.positive("on"),
    /'on' must be a positive number, got false/,
  );
  assert.throws(() => c.oneOf("act", ["relu"]), /field 'act' must be one of "relu", got "gelu"/);
  assert.throws(() => c.string("a"), /field 'a' must be a non-empty string, got 2/);
  assert.throws(() => c.bool("name"), /field 'name' must be true or false, got "x"/);
});

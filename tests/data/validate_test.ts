import assert from "node:assert/strict";
import { join } from "node:path";
import { loadDataset } from "../../src/data/datasets.ts";
import { DataError } from "../../src/data/errors.ts";
import { imageLimits, setImageLimits } from "../../src/io/image_file.ts";
import { rawRecord, withTempDir, writeTinyEvqa } from "./_helpers.ts";

const FILE = (dir: string) => join(dir, "easy-edit-mm/vqa/vqa_train.json");

function dataError(file: string, record: number, field: string, pattern: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof DataError, String(e));
    assert.equal(e.file, file);
    assert.equal(e.record, record);
    assert.equal(e.field, field);
    assert.ok(e.message.startsWith(`${file}: record ${record}: field '${field}' `), e.message);
    assert.match(e.message, pattern);
    return true;
  };
}

Deno.test("an empty target, answer or prompt is named by file, record and field", async () => {
  await withTempDir(async (dir) => {
    for (const [field, value] of [["alt", ""], ["m_loc_a", "  "], ["loc_ans", ""], ["src", "\n"]]) {
      const records = Array.from({ length: 5 }, (_, i) => rawRecord(i));
      records[3] = { ...records[3], [field]: value };
      await writeTinyEvqa(dir, records);
      await assert.rejects(
        loadDataset("EVQA", "train", { dataRoot: dir }),
        dataError(FILE(dir), 3, field, /is empty/),
        field,
      );
    }
  });
});

Deno.test("a bad image in record 7 is an error naming file, record and field, before any work", async () => {
  await withTempDir(async (dir) => {
    const records = Array.from({ length: 10 }, (_, i) => rawRecord(i));
    const images = await writeTinyEvqa(dir, records);
    const bad = join(images, "val2014/img7.png");
    const good = await Deno.readFile(bad);
    // a damaged header (the IHDR chunk's bytes overwritten)
    await Deno.writeFile(bad, good.map((b, i) => (i >= 12 && i < 29 ? 0xee : b)));
    await assert.rejects(
      loadDataset("EVQA", "train", { dataRoot: dir }),
      dataError(FILE(dir), 7, "image", /img7\.png\) cannot read its png header/),
    );
    // an SVG saved as .png
    await Deno.writeTextFile(bad, '<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>');
    await assert.rejects(
      loadDataset("EVQA", "train", { dataRoot: dir }),
      dataError(FILE(dir), 7, "image", /is an image of type svg/),
    );
    // over the pixel limit (the images are 20 x 16)
    await Deno.writeFile(bad, good);
    const before = imageLimits();
    try {
      setImageLimits({ maxPixels: 319 });
      await assert.rejects(
        loadDataset("EVQA", "train", { dataRoot: dir }),
        dataError(FILE(dir), 0, "image", /is 20x16 = 320 pixels, over the limit of 319/),
      );
    } finally {
      setImageLimits(before);
    }
    assert.equal((await loadDataset("EVQA", "train", { dataRoot: dir })).samples.length, 10);
  });
});

Deno.test("skipBadRecords leaves out every bad record and says how many and which", async () => {
  await withTempDir(async (dir) => {
    const records: unknown[] = Array.from({ length: 8 }, (_, i) => rawRecord(i));
    records[1] = { ...rawRecord(1), alt: "" };
    records[6] = { ...rawRecord(6), m_loc_q: 42 };
    const images = await writeTinyEvqa(dir, records, ["val2014/img5.png"]);
    await Deno.writeTextFile(join(images, "val2014/img3.png"), "not an image");
    await assert.rejects(
      loadDataset("EVQA", "train", { dataRoot: dir }),
      dataError(FILE(dir), 1, "alt", /is empty/),
    );
    const data = await loadDataset("EVQA", "train", { dataRoot: dir, skipBadRecords: true });
    assert.deepEqual(data.samples.map((s) => s.index), [0, 2, 4, 7]);
    assert.equal(data.skipped, 4);
    assert.deepEqual(data.skippedRecords.map((s) => s.index), [1, 6, 3, 5]);
    assert.deepEqual(data.skippedRecords.map((s) => s.reason.split(" ").slice(0, 2).join(" ")), [
      "field 'alt'",
      "field 'm_loc_q'",
      "field 'image'",
      "field 'image'",
    ]);
    assert.equal(data.warnings.length, 2);
    assert.match(
      data.warnings[0],
      /^skipped 2 of 8 records of .*: record 1: field 'alt' is empty; record 6: field 'm_loc_q' must be a string/,
    );
    assert.match(
      data.warnings[1],
      /^skipped 2 of 8 records of .*: record 3: field 'image' .*is not a png, jpeg, webp, svg image.*; record 5: field 'image' .*does not exist/,
    );
  });
});

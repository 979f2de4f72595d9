import assert from "node:assert/strict";
import { UsageError } from "../../src/cli/flags.ts";
import { parseShardFlags } from "../../src/cli/sharding.ts";

Deno.test("--shard I/N and --shards N with JOB_COMPLETION_INDEX; usage errors name the flag", () => {
  assert.deepEqual(parseShardFlags({ shard: "1/3" }, {}), { index: 1, count: 3 });
  assert.deepEqual(parseShardFlags({ shards: 8 }, { JOB_COMPLETION_INDEX: "7" }), {
    index: 7,
    count: 8,
  });
  assert.equal(parseShardFlags({}, { JOB_COMPLETION_INDEX: "1" }), undefined);
  const bad: [Parameters<typeof parseShardFlags>, RegExp][] = [
    [[{ shard: "1/3", shards: 3 }, {}], /--shard and --shards: give one/],
    [[{ shard: "3/3" }, {}], /--shard 3\/3: the shard index must be in 0\.\.2 of 3 shards/],
    [[{ shard: "0/0" }, {}], /must be in 0\.\.-1 of 0 shards|of 0 shards/],
    [[{ shard: "1-3" }, {}], /--shard must be I\/N \(e\.g\. 0\/4\), got "1-3"/],
    [
      [{ shards: 2 }, {}],
      /--shards 2 reads the shard index from \$JOB_COMPLETION_INDEX, which is not set/,
    ],
    [[{ shards: 2 }, { JOB_COMPLETION_INDEX: "x" }], /which is "x"/],
    [
      [{ shards: 2 }, { JOB_COMPLETION_INDEX: "2" }],
      /\$JOB_COMPLETION_INDEX 2: the shard index must be in 0\.\.1/,
    ],
  ];
  for (const [args, message] of bad) {
    assert.throws(() => parseShardFlags(...args), (e: Error) => {
      assert.ok(e instanceof UsageError, e.message);
      assert.match(e.message, message);
      return true;
    });
  }
});

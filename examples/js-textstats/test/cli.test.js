import { test } from "node:test";
import assert from "node:assert/strict";
import { formatSummary } from "../src/cli.js";

test("formatSummary lays out one file", () => {
  const out = formatSummary("a.txt", {
    lines: 1, words: 2, characters: 9, readingMinutes: 1,
    topWords: [{ word: "hi", count: 2 }],
  });
  assert.match(out, /^a\.txt:/);
  assert.match(out, /top words: hi\(2\)/);
});

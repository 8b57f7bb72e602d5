import { test } from "node:test";
import assert from "node:assert/strict";
import { lineCount, readingMinutes, summarize, topWords, words } from "../src/stats.js";

test("words keeps inner apostrophes and hyphens", () => {
  assert.deepEqual(words("Don't re-run it, O'Brien!"), ["Don't", "re-run", "it", "O'Brien"]);
});

test("lineCount counts a last line without newline", () => {
  assert.equal(lineCount(""), 0);
  assert.equal(lineCount("a"), 1);
  assert.equal(lineCount("a\nb\n"), 2);
  assert.equal(lineCount("a\nb"), 2);
});

test("topWords is case-insensitive with alphabetical ties", () => {
  assert.deepEqual(topWords("b a B a c", 2), [
    { word: "a", count: 2 },
    { word: "b", count: 2 },
  ]);
});

test("readingMinutes rounds up", () => {
  assert.equal(readingMinutes(""), 0);
  assert.equal(readingMinutes("word ".repeat(201)), 2);
});

test("summarize counts characters, not UTF-16 units", () => {
  assert.equal(summarize("héllo 👋").characters, 7);
});

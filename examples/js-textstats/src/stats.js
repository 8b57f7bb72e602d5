// Text statistics: pure functions, no I/O.

const WORD = /[\p{L}\p{N}]+(?:['’-][\p{L}\p{N}]+)*/gu;

/** Split text into words (letters and digits, with inner apostrophes and hyphens). */
export function words(text) {
  return text.match(WORD) ?? [];
}

/** Count lines the way `wc -l` does not: a last line without a newline still counts. */
export function lineCount(text) {
  if (text === "") return 0;
  const newlines = (text.match(/\n/g) ?? []).length;
  return text.endsWith("\n") ? newlines : newlines + 1;
}

/** The `n` most frequent words, case-insensitive, ties broken alphabetically. */
export function topWords(text, n = 5) {
  const counts = new Map();
  for (const w of words(text)) {
    const key = w.toLowerCase();
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, n)
    .map(([word, count]) => ({ word, count }));
}

/** Minutes to read at `wpm` words per minute, rounded up; 0 for empty text. */
export function readingMinutes(text, wpm = 200) {
  const count = words(text).length;
  return count === 0 ? 0 : Math.ceil(count / wpm);
}

/** Everything at once, for the CLI. */
export function summarize(text, { top = 5, wpm = 200 } = {}) {
  return {
    lines: lineCount(text),
    words: words(text).length,
    characters: [...text].length,
    readingMinutes: readingMinutes(text, wpm),
    topWords: topWords(text, top),
  };
}

#!/usr/bin/env node
// textstats FILE... : print statistics for each file.
import { readFileSync } from "node:fs";
import { summarize } from "./stats.js";

export function formatSummary(name, s) {
  const top = s.topWords.map((t) => `${t.word}(${t.count})`).join(" ");
  return [
    `${name}:`,
    `  lines ${s.lines}, words ${s.words}, characters ${s.characters}`,
    `  reading time ~${s.readingMinutes} min`,
    `  top words: ${top || "-"}`,
  ].join("\n");
}

export function main(argv) {
  const files = argv.filter((a) => !a.startsWith("--"));
  if (files.length === 0) {
    console.error("usage: textstats FILE...");
    return 2;
  }
  for (const file of files) {
    let text;
    try {
      text = readFileSync(file, "utf8");
    } catch (err) {
      console.error(`textstats: ${file}: ${err.code === "ENOENT" ? "no such file" : err.message}`);
      return 1;
    }
    console.log(formatSummary(file, summarize(text)));
  }
  return 0;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.exitCode = main(process.argv.slice(2));
}

#!/usr/bin/env node
// A `solc` executable over solc-js (the npm package `solc`, which carries the compiler and works
// offline) for py-solc-x and slither: answers `--version` and `--standard-json` (input on stdin),
// resolving imports under the working directory and node_modules. It prints only the JSON (the
// npm package's own CLI prints a banner first) and never calls process.exit() after writing, so
// large outputs are not cut off at the pipe's buffer size.
"use strict";
const fs = require("fs");
const path = require("path");

const projectRoot = path.resolve(__dirname, "..");
const solc = require(path.join(projectRoot, "node_modules", "solc"));

function findImports(importPath) {
  const candidates = [
    path.resolve(process.cwd(), importPath),
    path.join(projectRoot, importPath),
    path.join(projectRoot, "node_modules", importPath),
  ];
  for (const candidate of candidates) {
    if (fs.existsSync(candidate)) return { contents: fs.readFileSync(candidate, "utf8") };
  }
  return { error: `File not found: ${importPath}` };
}

const args = process.argv.slice(2);
if (args.includes("--version")) {
  const version = solc.version().replace(".Emscripten.clang", ".Linux.g++");
  process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${version}\n`);
} else if (args.includes("--standard-json")) {
  const input = fs.readFileSync(0, "utf8");
  process.stdout.write(solc.compile(input, { import: findImports }));
} else {
  process.stderr.write("usage: solcjs.js --version | --standard-json < input.json\n");
  process.exitCode = 2;
}

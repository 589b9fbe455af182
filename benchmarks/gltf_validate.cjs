// The Khronos glTF validator on .glb files: one JSON line per file with its issue counts and messages.
// Setup (a development check, outside the repo): npm install gltf-validator@2.0.0-dev.3.10
// Run: NODE_PATH=<that folder>/node_modules node benchmarks/gltf_validate.cjs FILE.glb...
const fs = require("fs");
const validator = require("gltf-validator");
(async () => {
  for (const path of process.argv.slice(2)) {
    const report = await validator.validateBytes(new Uint8Array(fs.readFileSync(path)), { maxIssues: 100 });
    const issues = report.issues;
    console.log(JSON.stringify({ path, validatorVersion: report.validatorVersion, errors: issues.numErrors,
      warnings: issues.numWarnings, infos: issues.numInfos, hints: issues.numHints, messages: issues.messages }));
  }
})().catch((error) => { console.error(String(error)); process.exit(1); });

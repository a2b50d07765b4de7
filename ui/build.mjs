// Bundles the UI into dist/: dist/assets/app-[hash].{js,css}, each beside its gzip (`.gz`, served to
// browsers that accept it), and dist/index.html pointing at them.
// `node build.mjs --tests` bundles tests/unit/*.test.ts into build/tests/ for `node --test` (node 20
// cannot run TypeScript itself).
import { build } from "esbuild";
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

// Not import.meta.dirname: Debian bookworm's node 18 (the container build) lacks it.
const here = fileURLToPath(new URL(".", import.meta.url));

if (process.argv.includes("--tests")) {
  const dir = join(here, "tests/unit");
  const entryPoints = readdirSync(dir).filter((f) => f.endsWith(".test.ts")).map((f) => join(dir, f));
  rmSync(join(here, "build/tests"), { recursive: true, force: true });
  await build({
    entryPoints, bundle: true, platform: "node", format: "esm", target: "node20",
    outdir: join(here, "build/tests"), outExtension: { ".js": ".mjs" }, external: ["node:*"], logLevel: "warning",
  });
} else {
  const dist = join(here, "dist");
  rmSync(dist, { recursive: true, force: true });
  const result = await build({
    entryPoints: { app: join(here, "src/main.tsx") },
    bundle: true, minify: true, format: "esm", target: "es2020", jsx: "automatic", jsxImportSource: "preact",
    outdir: join(dist, "assets"), entryNames: "[name]-[hash]", metafile: true, logLevel: "warning",
    legalComments: "none",
  });
  const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
  // Compressed once here, not per request: the server sends these bytes as they are.
  for (const file of outputs) {
    const path = join(dist, "assets", file);
    writeFileSync(`${path}.gz`, gzipSync(readFileSync(path), { level: 9 }));
  }
  const js = outputs.find((f) => f.endsWith(".js"));
  const css = outputs.find((f) => f.endsWith(".css"));
  mkdirSync(dist, { recursive: true });
  writeFileSync(join(dist, "index.html"), `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Luminate</title>
<link rel="icon" href="data:,">
${css ? `<link rel="stylesheet" href="/ui/assets/${css}">` : ""}
<script type="module" src="/ui/assets/${js}"></script>
</head>
<body><div id="app"></div></body>
</html>
`);
}

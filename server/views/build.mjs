// Builds each view into one self-contained HTML file (server/views/<name>.html): its script, with
// the extension's `App` and everything it imports bundled in by esbuild, and the shared stylesheet,
// inline. Nothing is fetched when a view runs. The output is deterministic, so
// tests/server/test_views.py can rebuild into a temporary folder and compare.
//
//   node server/views/build.mjs [output folder]      (scripts/regenerate runs it)
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "../..");
export const VIEWS = { course: "Course", attention: "Learners needing attention", thread: "Thread", report: "School report" };

// zod, which the extension's App validates its messages with, exports every language's error
// messages on its `z` and `core` namespaces; the App uses `z` whole, so a bundler keeps all of them (about
// 185 KB). The views need only English, the locale zod itself configures by default.
const zodEnglishOnly = {
  name: "zod-english-only",
  setup(build) {
    build.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      args.importer.includes(`${path.sep}zod${path.sep}v4${path.sep}`)
        ? { path: path.join(path.dirname(args.importer), "../locales/en.js"), namespace: "zod-locales" }
        : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: "zod-locales" }, (args) => ({
      contents: `export { default as en } from ${JSON.stringify(args.path)};`,
      resolveDir: ROOT,
      loader: "js",
    }));
  },
};

async function script(name) {
  const result = await esbuild.build({
    entryPoints: [path.join(HERE, "src", `${name}.js`)],
    absWorkingDir: ROOT,
    bundle: true,
    minify: true,
    format: "esm",
    target: "es2022",
    platform: "browser",
    legalComments: "none",
    charset: "utf8",
    write: false,
    plugins: [zodEnglishOnly],
  });
  // Inline in a <script>: no "</script" may end it early.
  return result.outputFiles[0].text.replaceAll("</script", "<\\/script");
}

export async function build(output = HERE) {
  mkdirSync(output, { recursive: true });
  const style = readFileSync(path.join(HERE, "src", "style.css"), "utf8");
  const written = [];
  for (const [name, title] of Object.entries(VIEWS)) {
    const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · Blohko</title>
<style>
${style}</style>
</head>
<body>
<div id="root" aria-live="polite"><p class="muted" style="padding:16px">Loading…</p></div>
<script type="module">${await script(name)}</script>
</body>
</html>
`;
    const file = path.join(output, `${name}.html`);
    writeFileSync(file, html);
    written.push(file);
  }
  return written;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const file of await build(process.argv[2] ? path.resolve(process.argv[2]) : HERE)) {
    console.log(`${path.relative(ROOT, file)} ${readFileSync(file).length} bytes`);
  }
}

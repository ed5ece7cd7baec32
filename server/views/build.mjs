// Builds each view into one self-contained HTML file (server/views/<name>.html): its script, with
// the extension's `App` and everything it imports bundled in by esbuild, and the shared stylesheet,
// inline. Nothing is fetched when a view runs. The output is deterministic, so
// tests/server/test_views.py can rebuild into a temporary folder and compare.
//
// The bundled script (about 318 KB, nearly all of it the extension's client and its peers) is
// stored gzip-compressed and base64-encoded in an inert <script type="application/gzip+base64">
// (about 111 KB): issue 34 holds each view's HTML under 150 KB. A short inline loader
// (src/loader.js) unpacks it with the browser's own DecompressionStream and runs it as an inline
// module script, which the MCP Apps default CSP allows ('unsafe-inline'; neither 'unsafe-eval'
// nor blob: URLs are needed).
//
//   node server/views/build.mjs [output folder]              (scripts/regenerate runs it)
//   node server/views/build.mjs --scripts <output folder>    each view's script unpacked (<name>.js)
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
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

// The App extends the `Protocol` of @modelcontextprotocol/client, whose module also holds the SDK's
// `Client`; the Client alone constructs the default JSON Schema validator (@cfworker/json-schema in
// a browser, 22 KB). A view never makes a Client, so the validator is left out: constructing it
// fails with a message that says why.
const noJsonSchemaValidator = {
  name: "no-json-schema-validator",
  setup(build) {
    build.onResolve({ filter: /^@modelcontextprotocol\/client\/_shims$/ }, () => ({
      path: "client-shims",
      namespace: "views-stub",
    }));
    build.onLoad({ filter: /.*/, namespace: "views-stub" }, () => ({
      contents: `export const CORS_IS_POSSIBLE = true;
export class DefaultJsonSchemaValidator {
  constructor() { throw new Error("Blohko's views bundle no JSON Schema validator: they make no SDK Client"); }
}`,
      loader: "js",
    }));
  },
};

export async function script(name) {
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
    plugins: [zodEnglishOnly, noJsonSchemaValidator],
  });
  return result.outputFiles[0].text;
}

// gzip at a fixed level; node writes mtime 0, and the header's OS byte (which zlib sets per
// platform) is fixed to 255, "unknown" (RFC 1952), so every system builds the same bytes.
export function pack(code) {
  const gzipped = gzipSync(Buffer.from(code, "utf8"), { level: 9 });
  gzipped[9] = 255;
  return gzipped.toString("base64");
}

// The loader (src/loader.js, readable there) runs the packed script, or says in the page why it
// cannot; minified to one line of about 650 bytes.
async function loader() {
  const source = readFileSync(path.join(HERE, "src", "loader.js"), "utf8");
  const result = await esbuild.transform(source, {
    minify: true,
    format: "esm",
    target: "es2022",
    legalComments: "none",
    charset: "utf8",
  });
  return result.code.trim();
}

export async function build(output = HERE) {
  mkdirSync(output, { recursive: true });
  const style = readFileSync(path.join(HERE, "src", "style.css"), "utf8");
  const unpack = await loader();
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
<script type="application/gzip+base64" id="view-script">${pack(await script(name))}</script>
<script type="module">${unpack}</script>
</body>
</html>
`;
    const file = path.join(output, `${name}.html`);
    writeFileSync(file, html);
    written.push(file);
  }
  return written;
}

/** Each view's script as the loader unpacks it, to <output>/<name>.js (the test compares). */
export async function buildScripts(output) {
  mkdirSync(output, { recursive: true });
  for (const name of Object.keys(VIEWS)) writeFileSync(path.join(output, `${name}.js`), await script(name));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [first, second] = process.argv.slice(2);
  if (first === "--scripts") {
    if (!second) throw new Error("usage: node server/views/build.mjs --scripts <output folder>");
    await buildScripts(path.resolve(second));
  } else {
    for (const file of await build(first ? path.resolve(first) : HERE)) {
      const name = path.basename(file, ".html");
      console.log(`${path.relative(ROOT, file)} ${readFileSync(file).length} bytes (script unpacked: ${Buffer.byteLength(await script(name))} bytes)`);
    }
  }
}

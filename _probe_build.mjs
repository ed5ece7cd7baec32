import * as esbuild from "esbuild";
import path from "node:path";
const zodOnlyEnglish = {
  name: "zod-only-english",
  setup(build) {
    build.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      args.importer.includes(`${path.sep}zod${path.sep}`) ? { path: "zod-locales-en", namespace: "zl" } : undefined);
    build.onLoad({ filter: /.*/, namespace: "zl" }, () => ({
      contents: `export { default as en } from ${JSON.stringify(path.resolve("node_modules/zod/v4/locales/en.js"))};`, loader: "js", resolveDir: process.cwd() }));
    if (process.env.PROTO) {
    build.onResolve({ filter: /^@modelcontextprotocol\/client$/ }, (args) => args.importer.includes("ext-apps") ? { path: "proto", namespace: "pr" } : undefined);
    build.onLoad({ filter: /.*/, namespace: "pr" }, () => ({
      contents: `export { v as Protocol } from ${JSON.stringify(path.resolve("node_modules/@modelcontextprotocol/client/dist/src-CeKsbNLO.mjs"))};`, loader: "js", resolveDir: process.cwd() }));
    }
  },
};
const r = await esbuild.build({ entryPoints: ["/tmp/vt/a.js"], bundle: true, minify: true, format: "esm", write: false, plugins: [zodOnlyEnglish], metafile: true, nodePaths: [path.resolve("node_modules")], legalComments: "none" });
console.log(r.outputFiles[0].contents.length);
const o=Object.values(r.metafile.outputs)[0]; const t={}; for (const [k,v] of Object.entries(o.inputs)){const p=k.split("/").slice(0,4).join("/"); t[p]=(t[p]||0)+v.bytesInOutput}; console.log(t)

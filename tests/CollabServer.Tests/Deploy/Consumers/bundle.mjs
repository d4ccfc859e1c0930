// Bundles page.ts as a page would be (esbuild, CSS imported from the package) and prints which
// copies of each CodeMirror package went into it, and whether the carets' stylesheet did.
import { build } from "esbuild";
import { readFileSync } from "node:fs";

const result = await build({
  entryPoints: ["page.ts"],
  bundle: true,
  format: "esm",
  target: "es2022",
  outdir: "out",
  metafile: true,
  logLevel: "error",
});
const copies = {};
for (const input of Object.keys(result.metafile.inputs)) {
  const m = /(.*node_modules\/@codemirror\/(state|view))\//.exec(input);
  if (m) (copies[m[2]] ??= new Set()).add(m[1]);
}
console.log(JSON.stringify({
  state: [...(copies.state ?? [])],
  view: [...(copies.view ?? [])],
  caretCss: readFileSync("out/page.css", "utf8").includes(".cm-remote-caret"),
}));

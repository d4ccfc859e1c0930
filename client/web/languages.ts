// Syntax highlighting chosen by the document name's extension, loaded only when needed.

import type { Extension } from "@codemirror/state";

export interface Language {
  readonly name: string;
  /** Whether long lines wrap by default (prose does, code does not). */
  readonly wrap: boolean;
  load(): Promise<Extension>;
}

const plain: Language = { name: "Plain text", wrap: true, load: async () => [] };

const byExtension: Record<string, Language> = {
  md: { name: "Markdown", wrap: true, load: async () => (await import("@codemirror/lang-markdown")).markdown() },
  markdown: { name: "Markdown", wrap: true, load: async () => (await import("@codemirror/lang-markdown")).markdown() },
  js: { name: "JavaScript", wrap: false, load: async () => (await import("@codemirror/lang-javascript")).javascript() },
  mjs: { name: "JavaScript", wrap: false, load: async () => (await import("@codemirror/lang-javascript")).javascript() },
  jsx: { name: "JavaScript", wrap: false, load: async () => (await import("@codemirror/lang-javascript")).javascript({ jsx: true }) },
  ts: { name: "TypeScript", wrap: false, load: async () => (await import("@codemirror/lang-javascript")).javascript({ typescript: true }) },
  tsx: { name: "TypeScript", wrap: false, load: async () => (await import("@codemirror/lang-javascript")).javascript({ typescript: true, jsx: true }) },
  py: { name: "Python", wrap: false, load: async () => (await import("@codemirror/lang-python")).python() },
  json: { name: "JSON", wrap: false, load: async () => (await import("@codemirror/lang-json")).json() },
};

/** The language for a document id such as `notes.md`; plain text when the extension is unknown. */
export function languageFor(docId: string): Language {
  const dot = docId.lastIndexOf(".");
  return dot > 0 ? (byExtension[docId.slice(dot + 1).toLowerCase()] ?? plain) : plain;
}

// A page outside the repository that uses the packed @collabserver/client and
// @collabserver/codemirror with CodeMirror 6 (PackagesTests typechecks and bundles it).
import { EditorState } from "@codemirror/state";
import { EditorView } from "@codemirror/view";
import { CollabClient, type CollabDocument } from "@collabserver/client";
import { collab } from "@collabserver/codemirror";
import "@collabserver/codemirror/style.css";

const client = new CollabClient({ serverUrl: location.origin, user: { name: "Ada", color: "#dd3333" } });
const doc: CollabDocument = await client.open("notes");
new EditorView({
  parent: document.querySelector<HTMLElement>("#editor")!,
  state: EditorState.create({ doc: doc.text, extensions: [collab(doc)] }),
});

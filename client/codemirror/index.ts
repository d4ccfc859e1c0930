// The CodeMirror 6 binding of the CollabServer TypeScript client: `collab(doc)` is the editor
// extension; `style.css` beside this file draws other members' carets and names.

export { collab, remoteChange } from "./binding.js";
export { changesToOp, opToChanges } from "./held.js";
export { textColorOn } from "./colors.js";

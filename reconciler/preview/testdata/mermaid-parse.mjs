// Parses Mermaid text with Mermaid's own parser, for a check by hand (not
// part of make test: it needs Node.js and ~150 npm packages):
//
//   npm install mermaid@11 jsdom
//   node mermaid-parse.mjs testdata/*.md testdata/*.mmd
//
// A Markdown file is checked by its ```mermaid block. Exit 1 on a failure.
import { JSDOM } from 'jsdom';
import fs from 'fs';

const dom = new JSDOM('<!doctype html><html><body></body></html>');
globalThis.window = dom.window;
globalThis.document = dom.window.document;
globalThis.DOMParser = dom.window.DOMParser;
globalThis.Element = dom.window.Element;
const { default: mermaid } = await import('mermaid');
mermaid.initialize({ startOnLoad: false });

let failed = 0;
for (const file of process.argv.slice(2)) {
  let text = fs.readFileSync(file, 'utf8');
  const block = text.match(/```mermaid\n([\s\S]*?)```/);
  if (block) text = block[1];
  try {
    const r = await mermaid.parse(text);
    console.log('ok', file, r.diagramType);
  } catch (e) {
    failed++;
    console.log('FAIL', file, String(e.message || e));
  }
}
process.exit(failed ? 1 : 0);

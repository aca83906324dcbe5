// Reads JSON lines {"id": n, "formula": "..."} on stdin and writes one JSON line per input:
// {"id": n, "type": "<formulon dataType>", "value": ...} or {"id": n, "error": "..."}.
// Used by crates/herald-expr/tests/differential.rs.
'use strict';
const { parse } = require('formulon');
const readline = require('readline');

const rl = readline.createInterface({ input: process.stdin, terminal: false });
rl.on('line', (line) => {
  if (!line.trim()) return;
  const { id, formula } = JSON.parse(line);
  let out;
  try {
    const r = parse(formula);
    if (r.type === 'error') {
      out = { id, error: `${r.errorType}: ${r.message}` };
    } else {
      let value = r.value;
      if (value instanceof Date) value = value.toISOString();
      out = { id, type: r.dataType, value };
    }
  } catch (e) {
    out = { id, error: `exception: ${e && e.message}` };
  }
  process.stdout.write(JSON.stringify(out) + '\n');
});

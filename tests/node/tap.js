// TAP for the Node cases (tests/node/*/cases.js): a line a check, the
// diagnostic of a failed one under it as comments, the plan last, and an
// exit status that says whether every check passed.
'use strict';

let n = 0;
let failed = 0;

function ok(cond, name, diag) {
  n++;
  console.log(`${cond ? 'ok' : 'not ok'} ${n} - ${name}`);
  if (cond) return;
  failed++;
  if (diag === undefined || diag === '') return;
  const text = typeof diag === 'string' ? diag : JSON.stringify(diag);
  console.log(`# ${String(text).split('\n').join('\n# ')}`);
}

// Prints the plan and exits: 1 when a check failed (or fail is set), else 0.
function done(fail) {
  console.log(`1..${n}`);
  process.exit(failed || fail ? 1 : 0);
}

module.exports = { ok, done };

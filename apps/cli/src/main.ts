#!/usr/bin/env node
// `bil`: the bil-message command-line client (docs/cli.md).
import { safe } from './format.js';
import { run } from './program.js';

const code = await run(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`bil: unexpected error: ${safe(err instanceof Error ? err.message : String(err))} [internal]\n`);
  return 1;
});
// Open sockets and keep-alive connections must not hold the process; output to
// pipes and files is written synchronously on POSIX, so nothing is cut off.
process.exit(code);

#!/usr/bin/env node
// The `bil` command as npm links it (node_modules/.bin/bil). A committed
// launcher rather than dist/main.js itself: npm links a workspace's bins at
// `npm ci`, before anything is built, and skips a bin whose file is missing.
import { existsSync } from 'node:fs';

const main = new URL('../dist/main.js', import.meta.url);
if (!existsSync(main)) {
  console.error('bil: the CLI is not built yet: run `npm run build` (or `npm start`) at the repository root first');
  process.exit(1);
}
await import(main.href);

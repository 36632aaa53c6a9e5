#!/usr/bin/env node
// The CLI, compiled to dist/ by `npm run build` (run by `npm install`). In a checkout (where
// scripts/build.js is), a dist/ older than src/ is rebuilt first, so the CLI is never older
// than its sources; an installed package has no scripts/ and runs dist/ as it is.
import { existsSync } from 'node:fs';

const builder = new URL('../scripts/build.js', import.meta.url);
if (existsSync(builder)) {
  const { buildIfStale } = await import(builder.href);
  try {
    buildIfStale();
  } catch (err) {
    console.error(`leasehold: ${err.message}`);
    process.exit(1);
  }
}
await import('../dist/cli/main.js');

/** `npm run openapi`: writes openapi.yaml and src/client/wire.ts from the wire model (see
 * scripts/openapi/generate.ts). With --check, writes nothing and fails if they differ. */
import { readFileSync, writeFileSync } from 'node:fs';
import { generate } from './openapi/generate.js';

const files = { document: new URL('../openapi.yaml', import.meta.url), clientTypes: new URL('../src/client/wire.ts', import.meta.url) };
const generated = await generate();
const check = process.argv.includes('--check');
let stale = 0;
for (const [what, url] of Object.entries(files) as Array<[keyof typeof files, URL]>) {
  let now = '';
  try {
    now = readFileSync(url, 'utf8');
  } catch {}
  if (now === generated[what]) continue;
  stale++;
  if (check) console.error(`${url.pathname} is not what the wire model generates: run npm run openapi`);
  else writeFileSync(url, generated[what]);
}
process.exitCode = check && stale ? 1 : 0;

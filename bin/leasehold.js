#!/usr/bin/env node
// The CLI is TypeScript, run through tsx like the server itself.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');

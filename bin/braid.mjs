#!/usr/bin/env node
// The `braid` command that package.json's "bin" names (npm link, npx braid): the CLI
// runs from its TypeScript sources through tsx's loader, as `npm run braid` does.
import { register } from 'tsx/esm/api';

register();
const { runCli } = await import('../core/cli/main.ts');
await runCli(process.argv.slice(2));

#!/usr/bin/env -S node --max-semi-space-size=4
// The `braid` command that package.json's "bin" names (npm link, npx braid), started
// with the engine's V8 flags (core/util/engine-flags.ts; env -S splits them): the CLI
// runs from its TypeScript sources through tsx's loader, as `npm run braid` does.
import { register } from 'tsx/esm/api';

register();
const { runCli } = await import('../core/cli/main.ts');
await runCli(process.argv.slice(2));

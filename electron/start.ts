/**
 * `npm start`: builds the renderer and the Electron shell and starts the tray app.
 * Where the Electron binary is missing (it cannot be downloaded on every machine, and
 * npm may block its install script), says so and points to the headless dashboard,
 * which serves the same renderer over the same contract.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

function electronBinary(): string | undefined {
  const override = process.env.ELECTRON_OVERRIDE_DIST_PATH;
  const dir = join(root, 'node_modules', 'electron');
  const pathFile = join(dir, 'path.txt');
  if (!existsSync(pathFile)) return undefined;
  const relative = readFileSync(pathFile, 'utf8').trim();
  const bin = override !== undefined ? join(override, relative) : join(dir, 'dist', relative);
  return existsSync(bin) ? bin : undefined;
}

const bin = electronBinary();
if (bin === undefined) {
  process.stderr.write(
    'Electron is not installed on this machine (its binary was not downloaded).\n' +
      'The same dashboard runs headless: npm run dashboard (prints a local URL with its token).\n',
  );
  process.exit(1);
}
for (const script of ['build:renderer', 'build:electron']) {
  const r = spawnSync('npm', ['run', script], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
const app = spawn(bin, [join(root, 'out', 'app', 'electron', 'main.js')], {
  cwd: root,
  stdio: 'inherit',
});
app.on('exit', (code) => process.exit(code ?? 0));

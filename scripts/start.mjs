// npm start: VS Code with the extension under development and the example library open.
// Desktop VS Code when `code` is on PATH; otherwise code-server (installed by
// .ci/install-vscode-host.sh) on http://127.0.0.1:PORT, to open in a browser.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..');
const examples = join(root, 'examples');

if (spawnSync('code', ['--version'], { stdio: 'ignore' }).status === 0) {
  spawn('code', ['--extensionDevelopmentPath', root, examples], { stdio: 'inherit' });
} else {
  const host = process.env.BITMAP_LAB_HOST_DIR ?? join(homedir(), '.cache', 'bitmap-lab-host');
  const entry = join(host, 'code-server', 'lib', 'node_modules', 'code-server', 'out', 'node', 'entry.js');
  if (!existsSync(entry)) {
    console.error('npm start: no desktop VS Code (`code`) on PATH and no code-server; run `bash .ci/install-vscode-host.sh` first.');
    process.exit(1);
  }
  const port = process.env.PORT ?? '8080';
  // The workbench loads a development extension from the URL's payload, which it reads only with the smoke-test driver on.
  const payload = JSON.stringify([['extensionDevelopmentPath', `vscode-remote://127.0.0.1:${port}${root}`]]);
  console.log(`Bitmap Lab in code-server: http://127.0.0.1:${port}/?${new URLSearchParams({ folder: examples, payload })}`);
  console.log('(stop with Ctrl+C)');
  spawn(join(host, 'node', 'bin', 'node'), [entry, '--bind-addr', `127.0.0.1:${port}`, '--auth', 'none', '--disable-telemetry',
    '--disable-update-check', '--disable-getting-started-override', '--vscode-option', 'enable-smoke-test-driver'], { stdio: 'inherit' });
}

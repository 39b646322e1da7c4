// code-server (from .ci/install-vscode-host.sh) and headless Chromium, started the way
// VSCODE-HOST.md found works here: for the extension tests (run-vscode-tests.mjs), the
// step latency bench (through it) and the README's screenshots (vscode-screenshots.mjs).
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const hostDir = process.env.BITMAP_LAB_HOST_DIR || join(homedir(), '.cache/bitmap-lab-host');
export const host = {
  node: join(hostDir, 'node/bin/node'),
  codeServer: join(hostDir, 'code-server/lib/node_modules/code-server/out/node/entry.js'),
  chromium: process.env.BITMAP_LAB_CHROMIUM || '/usr/bin/chromium',
};
export const STARTUP_TIMEOUT_MS = 60_000;

/** The pieces that are missing, as "what not found at PATH". */
export const missingPieces = () =>
  Object.entries(host).filter(([, file]) => !existsSync(file)).map(([what, file]) => `${what} not found at ${file}`);

/**
 * Starts code-server on a free port with its files under `tmp` (and `settings` as the
 * user's settings.json), in its own process group. Resolves with the process and the
 * "127.0.0.1:PORT" it listens on; `onLine` hears its log.
 */
export async function startCodeServer(tmp, { settings, onLine = () => {} } = {}) {
  // Without its own config file code-server writes ~/.config/code-server/config.yaml.
  writeFileSync(join(tmp, 'config.yaml'), 'auth: none\ncert: false\n');
  if (settings) {
    mkdirSync(join(tmp, 'user-data/User'), { recursive: true });
    writeFileSync(join(tmp, 'user-data/User/settings.json'), JSON.stringify(settings, null, 2));
  }
  const server = spawn(host.node, [
    host.codeServer,
    '--bind-addr', '127.0.0.1:0', '--auth', 'none',
    '--config', join(tmp, 'config.yaml'),
    '--user-data-dir', join(tmp, 'user-data'), '--extensions-dir', join(tmp, 'extensions'),
    '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust',
    '--disable-getting-started-override',
    // Without the smoke-test driver the workbench ignores the test payload and hangs.
    '--vscode-option', 'enable-smoke-test-driver',
  ], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const started = new Promise((resolveStart, rejectStart) => {
    const line = (text) => {
      onLine(text);
      const match = /HTTP server listening on http:\/\/([\d.]+:\d+)/.exec(text);
      if (match) resolveStart(match[1]);
    };
    createInterface({ input: server.stdout }).on('line', line);
    createInterface({ input: server.stderr }).on('line', line);
    server.once('error', rejectStart);
    server.once('exit', (code) => rejectStart(new Error(`code-server exited with ${code}`)));
  });
  try {
    return { server, authority: await withTimeout(started, STARTUP_TIMEOUT_MS, 'code-server to start') };
  } catch (error) {
    signalGroup(server, 'SIGKILL');
    throw error;
  }
}

export async function launchChromium(tmp) {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: host.chromium,
    timeout: STARTUP_TIMEOUT_MS,
    // Its own HOME, or Chromium leaves crash-report and dconf folders in the user's.
    env: { ...process.env, HOME: join(tmp, 'chromium-home') },
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** The workbench address that loads `extensionDevelopmentPath` (and the tests, if given) into `folder`. */
export function workbenchUrl(authority, { folder, extensionDevelopmentPath, extensionTestsPath }) {
  // The remote authority must be exactly the host:port the browser uses.
  const remote = (path) => `vscode-remote://${authority}${path.split('/').map(encodeURIComponent).join('/')}`;
  const payload = JSON.stringify([
    ['extensionDevelopmentPath', remote(extensionDevelopmentPath)],
    ...(extensionTestsPath ? [['extensionTestsPath', remote(extensionTestsPath)]] : []),
  ]);
  return `http://${authority}/?${new URLSearchParams({ ...(folder && { folder }), payload })}`;
}

export async function stop(server, browser, tmp) {
  await withTimeout(browser?.close() ?? Promise.resolve(), 10_000, 'Chromium to close').catch(() => {});
  // Kill code-server's whole process group: its extension host and server children
  // otherwise linger for seconds after the wrapper dies.
  if (server && server.exitCode === null && server.signalCode === null) {
    const exited = new Promise((resolve) => server.once('exit', resolve));
    signalGroup(server, 'SIGTERM');
    await withTimeout(exited, 5_000, 'code-server to stop').catch(() => {});
  }
  if (server) signalGroup(server, 'SIGKILL');
  rmSync(tmp, { recursive: true, force: true });
}

function signalGroup(child, signal) {
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms / 1000} s waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

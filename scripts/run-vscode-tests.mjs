// Runs the extension test suite (out/test/vscode/suite/index.js) inside a real VS Code
// extension host, and exits with the suite's result.
//
// Which VS Code, by BITMAP_LAB_VSCODE:
//   code-server  code-server from .ci/install-vscode-host.sh, in headless Chromium
//   desktop      desktop VS Code through @vscode/test-electron (downloaded once)
//   PATH         that VS Code executable
//   (unset)      code-server when it is installed, desktop VS Code otherwise
// When none can be had the run is SKIPPED (exit 0), except under CI=true or when
// BITMAP_LAB_VSCODE asked for one, where it fails. BITMAP_LAB_VSCODE_VERBOSE=1 shows all
// logs; BITMAP_LAB_VSCODE_TIMEOUT_S bounds a run (default 300).
//
// Flags (as desktop VS Code takes them): --extensionDevelopmentPath=DIR
// --extensionTestsPath=FILE [FOLDER to open]; they default to this project and its suite.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { format, parseArgs } from 'node:util';

const projectDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: flags, positionals } = parseArgs({
  options: {
    extensionDevelopmentPath: { type: 'string', default: projectDir },
    extensionTestsPath: { type: 'string', default: join(projectDir, 'out/test/vscode/suite/index.js') },
  },
  allowPositionals: true,
});
const extensionDevelopmentPath = resolve(flags.extensionDevelopmentPath);
const extensionTestsPath = resolve(flags.extensionTestsPath);
const folder = positionals[0] && resolve(positionals[0]);

const hostDir = process.env.BITMAP_LAB_HOST_DIR || join(homedir(), '.cache/bitmap-lab-host');
const host = {
  node: join(hostDir, 'node/bin/node'),
  codeServer: join(hostDir, 'code-server/lib/node_modules/code-server/out/node/entry.js'),
  chromium: process.env.BITMAP_LAB_CHROMIUM || '/usr/bin/chromium',
};
const STARTUP_TIMEOUT_MS = 60_000;
const RUN_TIMEOUT_MS = Number(process.env.BITMAP_LAB_VSCODE_TIMEOUT_S || 300) * 1000;

// The workbench's own log reaches codeAutomationLog mixed with the extension host's
// console. These lines come in every run and say nothing about our extension: the
// workbench starting up, and reaching for hosts that cannot be reached here.
const NOISE = [
  /^(Resolving|Resolved) connection token|^Creating a socket|^Updating additional builtin extensions/,
  /^\[(AgentHost|ChatModelSelection|AccountPolicyGate|reconnection-grace-time|Service Worker)\b/,
  /open-vsx|marketplace|telemetry|api\.github\.com|An unknown error occurred/i,
  /getaddrinfo|ENOTFOUND|EAI_AGAIN|^Canceled: Canceled/,
];
const verbose = process.env.BITMAP_LAB_VSCODE_VERBOSE === '1';
const isNoise = (line) => NOISE.some((pattern) => pattern.test(line));

class Unavailable extends Error {}

function mode() {
  const wanted = process.env.BITMAP_LAB_VSCODE;
  if (wanted === 'code-server' || (!wanted && existsSync(host.codeServer))) return runInCodeServer;
  return runInDesktop;
}

if (!existsSync(extensionTestsPath)) {
  console.error(`run-vscode-tests: ${extensionTestsPath} is missing; run \`npx tsc -p .\` first`);
  process.exit(1);
}
try {
  process.exitCode = await mode()();
} catch (error) {
  if (!(error instanceof Unavailable)) {
    console.error(`run-vscode-tests: FAILED: ${error.message}`);
    process.exitCode = 1;
  } else if (process.env.CI === 'true' || process.env.BITMAP_LAB_VSCODE) {
    // In CI, or when a particular VS Code was asked for, a missing one is an error.
    console.error(`run-vscode-tests: FAILED: no VS Code to run the extension tests in: ${error.message}`);
    process.exitCode = 1;
  } else {
    console.error(`\n*** SKIPPED: extension tests in VS Code: ${error.message} ***\n`);
  }
}

async function runInDesktop() {
  const { downloadAndUnzipVSCode, runTests, TestRunFailedError } = await import('@vscode/test-electron');
  let vscodeExecutablePath = process.env.BITMAP_LAB_VSCODE;
  if (!vscodeExecutablePath || vscodeExecutablePath === 'desktop') {
    try {
      vscodeExecutablePath = await downloadAndUnzipVSCode();
    } catch (error) {
      throw new Unavailable(`desktop VS Code could not be downloaded (${error.message}); ` +
        'install code-server with .ci/install-vscode-host.sh instead');
    }
  } else if (!existsSync(vscodeExecutablePath)) {
    throw new Unavailable(`BITMAP_LAB_VSCODE=${vscodeExecutablePath} does not exist`);
  }
  try {
    return await runTests({
      vscodeExecutablePath, extensionDevelopmentPath, extensionTestsPath,
      launchArgs: ['--disable-extensions', '--disable-workspace-trust', ...(folder ? [folder] : [])],
    });
  } catch (error) {
    if (error instanceof TestRunFailedError) return error.code ?? 1;
    throw error;
  }
}

async function runInCodeServer() {
  for (const [what, file] of Object.entries(host)) {
    if (!existsSync(file)) throw new Unavailable(`${what} not found at ${file}; run .ci/install-vscode-host.sh`);
  }
  const { chromium } = await import('playwright-core');
  const tmp = mkdtempSync(join(tmpdir(), 'bitmap-lab-vscode-'));
  // Without its own config file code-server writes ~/.config/code-server/config.yaml.
  writeFileSync(join(tmp, 'config.yaml'), 'auth: none\ncert: false\n');
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
  const serverExit = new Promise((_, reject) => server.once('exit', (code, signal) =>
    reject(new Error(`code-server exited early (${signal ?? code})`))));
  serverExit.catch(() => {});
  let browser;
  let stopping;
  const stopAll = () => (stopping ??= stop(server, browser, tmp));
  process.once('SIGINT', () => stopAll().then(() => process.exit(130)));
  process.once('SIGTERM', () => stopAll().then(() => process.exit(143)));
  try {
    const authority = await listeningAuthority(server);
    browser = await chromium.launch({
      executablePath: host.chromium,
      timeout: STARTUP_TIMEOUT_MS,
      // Its own HOME, or Chromium leaves crash-report and dconf folders in the user's.
      env: { ...process.env, HOME: join(tmp, 'chromium-home') },
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const page = await browser.newPage();
    // After the suite ends the workbench keeps logging; none of that belongs to the run.
    let finished = false;
    let resolveExit;
    const exitCode = new Promise((resolve) => { resolveExit = resolve; });
    await page.exposeFunction('codeAutomationExit', (code) => {
      finished = true;
      resolveExit(code);
    });
    await page.exposeFunction('codeAutomationLog', (type, args) => {
      const line = format(...args);
      if (!finished && (verbose || !isNoise(line))) (type === 'error' ? console.error : console.log)(line);
    });
    // The remote authority must be exactly the host:port the browser uses.
    const remote = (path) => `vscode-remote://${authority}${path.split('/').map(encodeURIComponent).join('/')}`;
    const payload = JSON.stringify([
      ['extensionDevelopmentPath', remote(extensionDevelopmentPath)],
      ['extensionTestsPath', remote(extensionTestsPath)],
    ]);
    const query = new URLSearchParams({ ...(folder && { folder }), payload });
    await page.goto(`http://${authority}/?${query}`, { timeout: STARTUP_TIMEOUT_MS });
    return await withTimeout(Promise.race([exitCode, serverExit]), RUN_TIMEOUT_MS, 'the test run');
  } finally {
    await stopAll();
  }
}

// Resolves with "127.0.0.1:PORT" once code-server listens; keeps its log to show on failure.
function listeningAuthority(server) {
  const log = [];
  const started = new Promise((resolveStart, rejectStart) => {
    const onLine = (line) => {
      if (verbose) console.log(`code-server: ${line}`);
      log.push(line);
      const match = /HTTP server listening on http:\/\/([\d.]+:\d+)/.exec(line);
      if (match) resolveStart(match[1]);
    };
    createInterface({ input: server.stdout }).on('line', onLine);
    createInterface({ input: server.stderr }).on('line', onLine);
    server.once('error', rejectStart);
    server.once('exit', (code) => rejectStart(new Error(`code-server exited with ${code}`)));
  });
  return withTimeout(started, STARTUP_TIMEOUT_MS, 'code-server to start').catch((error) => {
    console.error(log.filter((line) => !isNoise(line)).join('\n'));
    throw error;
  });
}

async function stop(server, browser, tmp) {
  await withTimeout(browser?.close() ?? Promise.resolve(), 10_000, 'Chromium to close').catch(() => {});
  // Kill code-server's whole process group: its extension host and server children
  // otherwise linger for seconds after the wrapper dies.
  if (server.exitCode === null && server.signalCode === null) {
    const exited = new Promise((resolve) => server.once('exit', resolve));
    signalGroup(server, 'SIGTERM');
    await withTimeout(exited, 5_000, 'code-server to stop').catch(() => {});
  }
  signalGroup(server, 'SIGKILL');
  rmSync(tmp, { recursive: true, force: true });
}

function signalGroup(child, signal) {
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms / 1000} s waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

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
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { format, parseArgs } from 'node:util';
import { host, launchChromium, missingPieces, startCodeServer, stop, STARTUP_TIMEOUT_MS, withTimeout, workbenchUrl } from './code-server.mjs';

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
  const missing = missingPieces();
  if (missing.length) throw new Unavailable(`${missing.join(', ')}; run .ci/install-vscode-host.sh`);
  const tmp = mkdtempSync(join(tmpdir(), 'bitmap-lab-vscode-'));
  const log = [];
  let server;
  let browser;
  let stopping;
  const stopAll = () => (stopping ??= stop(server, browser, tmp));
  process.once('SIGINT', () => stopAll().then(() => process.exit(130)));
  process.once('SIGTERM', () => stopAll().then(() => process.exit(143)));
  try {
    let authority;
    try {
      ({ server, authority } = await startCodeServer(tmp, {
        onLine: (line) => {
          if (verbose) console.log(`code-server: ${line}`);
          log.push(line);
        },
      }));
    } catch (error) {
      console.error(log.filter((line) => !isNoise(line)).join('\n'));
      throw error;
    }
    const serverExit = new Promise((_, reject) => server.once('exit', (code, signal) =>
      reject(new Error(`code-server exited early (${signal ?? code})`))));
    serverExit.catch(() => {});
    browser = await launchChromium(tmp);
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
    await page.goto(workbenchUrl(authority, { folder, extensionDevelopmentPath, extensionTestsPath }), { timeout: STARTUP_TIMEOUT_MS });
    return await withTimeout(Promise.race([exitCode, serverExit]), RUN_TIMEOUT_MS, 'the test run');
  } finally {
    await stopAll();
  }
}

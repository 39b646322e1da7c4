/**
 * bench/vscode-step: step latency in a real VS Code host, from the step
 * command to the Bitmap Lab panel reporting the frame it drew, against a
 * no-op command timed in the same host in the same run. Starts the host as
 * the extension tests do (scripts/run-vscode-tests.mjs: code-server in
 * headless Chromium, or desktop VS Code), with bench/vscode-host/step-latency
 * as the "tests"; without a VS Code it says so and does nothing.
 *
 * Run: npm run build && npx tsc -p . && node out/bench/vscode-step.js
 */
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

const project = resolve(__dirname, '../..');
const { status } = spawnSync(
  process.execPath,
  [resolve(project, 'scripts/run-vscode-tests.mjs'), `--extensionTestsPath=${resolve(project, 'out/bench/vscode-host/step-latency.js')}`],
  { stdio: 'inherit', cwd: project },
);
process.exitCode = status ?? 1;

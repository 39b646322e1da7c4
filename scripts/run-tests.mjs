// Runs every suite: the node:test files compiled to out/test, then the VS Code host suite.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const files = readdirSync('out/test', { recursive: true })
  .filter((file) => file.endsWith('.test.js'))
  .map((file) => join('out/test', file))
  .sort();
const run = (args) => spawnSync(process.execPath, args, { stdio: 'inherit' }).status ?? 1;

let status = run(['--test', '--test-reporter=spec', ...files]);
if (status === 0) status = run(['scripts/run-vscode-tests.mjs']);
process.exit(status);

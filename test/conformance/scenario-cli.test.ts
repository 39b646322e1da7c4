// `npm run conformance -- --scenario FILE...`: scenario files checked on QEMU 7.2 from the command line.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { QemuProcess } from '../support/qemu';
import { skipWithout } from '../support/tools';

const ROOT = path.join(__dirname, '..', '..', '..');
const CLI = path.join(ROOT, 'out', 'test', 'conformance-cli.js');
const skip = skipWithout(QemuProcess.binary() !== undefined, 'QEMU (qemu-system-x86_64)');

function conformance(...files: string[]): { status: number | null; stdout: string } {
  const result = spawnSync(process.execPath, [CLI, '--scenario', ...files], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  return { status: result.status, stdout: result.stdout };
}

test('a scenario that QEMU agrees with, and one it cannot run, in one call', { skip }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bitmap-lab-conformance-'));
  try {
    const engineOnly = path.join(dir, 'frames.bitmaplab.json');
    fs.writeFileSync(engineOnly, JSON.stringify({ title: 't', images: [{ name: 'd', format: 'raw', size: '1M' }], steps: [{ advance: { frames: 2 } }] }));
    const { status, stdout } = conformance('examples/paced-backup-advance.bitmaplab.json', engineOnly);
    assert.equal(status, 1);
    assert.deepEqual(stdout.trim().split('\n'), [
      'examples/paced-backup-advance.bitmaplab.json: 9 steps, the same on QEMU',
      `${engineOnly}: not checked: steps[0]: an advance by frames, progress or a bitmap's change runs only on the engine; QEMU cannot stop there`,
      'conformance: 2 scenarios, 0 divergences, 1 not checked',
    ]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

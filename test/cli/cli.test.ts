/** The bitmap-lab command line, as a user runs it (dist/cli.js, built by npm test). */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { createQcow2 } from '../../src/engine/drivers/qcow2/create';
import { Engine } from '../../src/engine/engine';
import { QmpMonitor } from '../../src/engine/qmp/monitor';

const ROOT = path.join(__dirname, '..', '..', '..');
const CLI = path.join(ROOT, 'dist', 'cli.js');
const EXAMPLE = path.join(ROOT, 'examples', 'failed-incremental-always.bitmaplab.json');

function cli(...args: string[]) {
  const result = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: os.tmpdir() });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

function scratch(name: string, content: string): string {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bitmap-lab-cli-')), name);
  fs.writeFileSync(file, content);
  return file;
}

test('run: a table of the steps, and success when every expectation holds; no progress line when piped', () => {
  const { code, stdout, stderr } = cli('run', EXAMPLE);
  assert.equal(code, 0);
  assert.equal(stderr, '');
  assert.match(stdout, /block-job-set-speed .* ok +drive0\/bitmap0=12\.06 MiB/);
  assert.match(stdout, /every expectation held/);
});

test('run: a broken expectation exits 1 and names it', () => {
  const scenario = JSON.parse(fs.readFileSync(EXAMPLE, 'utf8'));
  scenario.steps[9].expect.bitmap.count = '36M';
  const { code, stderr } = cli('run', scratch('broken.bitmaplab.json', JSON.stringify(scenario, null, 2)));
  assert.equal(code, 1);
  assert.match(stderr, /steps\[9\]: bitmap drive0\/bitmap0: count is 12648448, expected 37748736/);
});

test('run: schema errors give the JSON path, the line and what was expected', () => {
  const text = '{\n  "title": "t",\n  "images": [{"name": "d", "format": "vmdk", "size": "1M"}],\n  "steps": [{"write": {"node": "d", "offset": "1x", "length": 1}}]\n}\n';
  const { code, stderr } = cli('run', scratch('bad.bitmaplab.json', text));
  assert.equal(code, 2);
  assert.match(stderr, /bad\.bitmaplab\.json:3:\d+: images\[0\]\.format: must be one of "raw", "qcow2"/);
  assert.match(stderr, /bad\.bitmaplab\.json:4:\d+: steps\[0\]\.write\.offset: must be a byte count/);
  const syntax = cli('run', scratch('syntax.bitmaplab.json', '{"title": "t",\n  "images": [}'));
  assert.equal(syntax.code, 2);
  assert.match(syntax.stderr, /syntax\.bitmaplab\.json:2:\d+: \(top\): JSON syntax: ValueExpected/);
});

test('run --to prints the state after a frame', () => {
  const { code, stdout } = cli('run', EXAMPLE, '--to', '185');
  assert.equal(code, 0);
  const state = JSON.parse(stdout);
  const bitmap = state.bitmaps.find((b: { name?: string }) => b.name === 'bitmap0');
  assert.equal(bitmap.count, 12 * 1024 * 1024 + 65536);
});

test('demo: the retry copies a third of the data under always, and a page of both timelines', () => {
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bitmap-lab-demo-')), 'demo.html');
  const { code, stdout } = cli('demo', '--out', out);
  assert.match(fs.readFileSync(out, 'utf8'), /<script type="application\/json" id="bitmap-lab-runs">/);
  assert.equal(code, 0);
  assert.match(stdout, /on-success +36\.06 MiB +\(S ∪ N\) +36\.06 MiB/);
  assert.match(stdout, /always +12\.06 MiB +\(N ∪ C\) +12\.06 MiB/);
  assert.match(stdout, /copies 24 MiB less \(67 % less\)/);
});

test('--help for every command', () => {
  for (const command of ['run', 'demo', 'qmp', 'inspect', 'export']) {
    const { code, stdout } = cli(command, '--help');
    assert.equal(code, 0);
    assert.match(stdout, new RegExp(`Usage: bitmap-lab ${command}`));
  }
});

test('inspect: size, allocation, backing chain and persistent bitmaps, without changing a byte', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bitmap-lab-inspect-'));
  createQcow2(path.join(dir, 'base.qcow2'), { size: 8 << 20 });
  createQcow2(path.join(dir, 'top.qcow2'), { size: 8 << 20, backingFile: 'base.qcow2', backingFormat: 'qcow2' });
  const monitor = new QmpMonitor(new Engine(), { negotiated: true });
  const run = (execute: string, args: Record<string, unknown>) => assert.equal((monitor.execute({ execute, arguments: args }) as { error?: unknown }).error, undefined);
  run('blockdev-add', { driver: 'qcow2', 'node-name': 'top', file: { driver: 'file', filename: path.join(dir, 'top.qcow2') } });
  run('block-dirty-bitmap-add', { node: 'top', name: 'daily', granularity: 4096, persistent: true });
  run('block-dirty-bitmap-add', { node: 'top', name: 'paused', persistent: true, disabled: true });
  run('human-monitor-command', { 'command-line': 'qemu-io top "write -P 7 8k 20k"' });
  monitor.execute({ execute: 'quit' });
  const image = path.join(dir, 'top.qcow2');
  const hash = () => createHash('sha256').update(fs.readFileSync(image)).digest('hex');
  const before = hash();
  const { code, stdout } = cli('inspect', image, '--json');
  assert.equal(code, 0);
  assert.equal(hash(), before);
  const [top, base] = JSON.parse(stdout);
  assert.equal(top.format, 'qcow2');
  assert.equal(top.backing, 'base.qcow2');
  assert.deepEqual(top.allocation, { allocated: 65536, zero: 0, unallocated: (8 << 20) - 65536 });
  const bitmaps = top.bitmaps.map((b: { name: string; flags: string[]; count: number; extents: unknown }) => [b.name, b.flags, b.count, b.extents]);
  assert.deepEqual(bitmaps.sort(), [
    ['daily', ['auto'], 20480, [[8192, 28672]]],
    ['paused', [], 0, []],
  ]);
  assert.equal(base.filename, path.join(dir, 'base.qcow2'));
  assert.equal(cli('inspect', path.join(dir, 'missing.qcow2')).code, 1);
});

test('export: a self-contained page of a scenario', () => {
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bitmap-lab-export-')), 'page.html');
  const { code, stdout } = cli('export', EXAMPLE, '--html', out);
  assert.equal(code, 0);
  assert.match(stdout, /frames written to/);
  const page = fs.readFileSync(out, 'utf8');
  assert.match(page, /Content-Security-Policy/);
  assert.doesNotMatch(page, /<script[^>]+src=|<link[^>]+href=|https?:\/\/(?!www\.w3\.org)/);
});

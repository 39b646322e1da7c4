/**
 * A backup job running free over the wire, on our server and on QEMU 7.2:
 * rate limited in real time, sped up with block-job-set-speed, its events
 * delivered as they happen, on images named relative to the directory the
 * server was started in.
 */
import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { QemuProcess } from '../support/qemu';
import { skipWithout } from '../support/tools';
import { RawClient, assertSameLines, normalise, sleep, startServer, type ServerKind } from './wire';

const skipQemu = skipWithout(QemuProcess.binary() !== undefined, 'QEMU (qemu-system-x86_64)');

const MiB = 1024 * 1024;
const SIZE = 2 * MiB;
const SPEED = 2 * MiB;

const images = (dir: string) => {
  for (const name of ['s.raw', 't.raw']) fs.writeFileSync(path.join(dir, name), Buffer.alloc(SIZE));
};

const qmp = (execute: string, args?: Record<string, unknown>) => `${JSON.stringify(args ? { execute, arguments: args } : { execute })}\n`;
const raw = (name: string, file: string) => qmp('blockdev-add', { driver: 'raw', 'node-name': name, file: { driver: 'file', filename: file } });
const io = (node: string, command: string) => qmp('human-monitor-command', { 'command-line': `qemu-io ${node} "${command}"` });

/** Host allocation differs by design (docs/differences-from-qemu.md). */
const withoutActualSize = (line: string) => normalise(line).replace(/"actual-size": \d+/g, '"actual-size": N');

interface Run {
  transcript: string[];
  /** From the set-speed request to BLOCK_JOB_COMPLETED. */
  seconds: number;
  /** Job progress half a second after the speed was raised. */
  midway: number;
  target: Buffer;
}

async function backupRunningFree(kind: ServerKind): Promise<Run> {
  const server = await startServer(kind, images);
  const transcript: string[] = [];
  const exchange = async (request: string, lines: number) => {
    client.send(request);
    transcript.push(...(await client.take(lines)).map(withoutActualSize));
  };
  const client = await RawClient.connect(server.socketPath);
  try {
    transcript.push(...(await client.take(1)).map(normalise));
    await exchange(qmp('qmp_capabilities'), 1);
    await exchange(raw('src', 's.raw'), 1);
    await exchange(raw('tgt', 't.raw'), 1);
    await exchange(qmp('block-dirty-bitmap-add', { node: 'src', name: 'b0' }), 1);
    await exchange(io('src', 'write -P 0x11 0 1M'), 1);
    // Speed 1 with one worker and 64 KiB chunks: the first cluster is copied, then the job sleeps.
    await exchange(qmp('blockdev-backup', {
      'job-id': 'j0', device: 'src', target: 'tgt', sync: 'full', speed: 1,
      'x-perf': { 'max-workers': 1, 'max-chunk': 65536 }, 'filter-node-name': 'cbw',
    }), 5);
    await sleep(300);
    await exchange(qmp('query-jobs'), 1);

    const raised = Date.now();
    await exchange(qmp('block-job-set-speed', { device: 'j0', speed: SPEED }), 1);
    await sleep(500);
    client.send(qmp('query-jobs'));
    const [midwayReply] = await client.take(1);
    const midway = (JSON.parse(midwayReply).return as Array<{ 'current-progress': number }>)[0]['current-progress'];
    transcript.push(...(await client.takeUntil((line) => line.includes('BLOCK_JOB_COMPLETED'))).map(normalise));
    const seconds = (Date.now() - raised) / 1000;
    transcript.push(...(await client.takeUntil((line) => line.includes('"status": "null"'))).map(normalise));

    await exchange(qmp('query-named-block-nodes'), 1);
    await exchange(qmp('x-debug-block-dirty-bitmap-sha256', { node: 'src', name: 'b0' }), 1);
    await exchange(qmp('quit'), 2);
    await client.waitClosed();
    transcript.push(`exit code ${await server.exited}`);
    return { transcript, seconds, midway, target: fs.readFileSync(path.join(server.dir, 't.raw')) };
  } finally {
    client.close();
    await server.stop();
  }
}

const event = (name: string, data: string) => `{"timestamp": {"seconds": S, "microseconds": U}, "event": "${name}", "data": ${data}}`;
const status = (value: string) => event('JOB_STATUS_CHANGE', `{"status": "${value}", "id": "j0"}`);
const file = (name: string) =>
  `"image": {"virtual-size": ${SIZE}, "filename": "${name}", "format": "raw", "actual-size": N, "dirty-flag": false}`;
const node = (name: string, image: string, extra = '') =>
  `{"iops_rd": 0, "detect_zeroes": "off", ${file(image)}, "iops_wr": 0, "ro": false, "node-name": "${name}", "backing_file_depth": 0, "drv": "raw", "iops": 0, "bps_wr": 0, "write_threshold": 0, ${extra}"encrypted": false, "bps": 0, "bps_rd": 0, "cache": {"no-flush": false, "direct": false, "writeback": true}, "file": "${image}"}`;
const fileNode = (name: string, image: string) =>
  `{"iops_rd": 0, "detect_zeroes": "off", ${file(image).replace('"format": "raw"', '"format": "file"')}, "iops_wr": 0, "ro": false, "node-name": "${name}", "backing_file_depth": 0, "drv": "file", "iops": 0, "bps_wr": 0, "write_threshold": 0, "encrypted": false, "bps": 0, "bps_rd": 0, "cache": {"no-flush": false, "direct": false, "writeback": true}, "file": "${image}"}`;

const EXPECTED = [
  '{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "P"}, "capabilities": ["oob"]}}',
  '{"return": {}}',
  '{"return": {}}',
  '{"return": {}}',
  '{"return": {}}',
  '{"return": ""}',
  status('created'),
  status('running'),
  status('paused'),
  status('running'),
  '{"return": {}}',
  '{"return": [{"current-progress": 65536, "status": "running", "total-progress": 2097152, "type": "backup", "id": "j0"}]}',
  '{"return": {}}',
  status('waiting'),
  status('pending'),
  event('BLOCK_JOB_COMPLETED', `{"device": "j0", "len": ${SIZE}, "offset": ${SIZE}, "speed": ${SPEED}, "type": "backup"}`),
  status('concluded'),
  status('null'),
  `{"return": [${node('tgt', 't.raw')}, ${fileNode('#block', 't.raw')}, ${node('src', 's.raw', '"dirty-bitmaps": [{"name": "b0", "recording": true, "persistent": false, "busy": false, "granularity": 65536, "count": 1048576}], ')}, ${fileNode('#block', 's.raw')}]}`,
  '{"return": {"sha256": "SHA"}}',
  event('SHUTDOWN', '{"guest": false, "reason": "host-qmp-quit"}'),
  '{"return": {}}',
  'exit code 0',
];

describe('a backup running free over the wire', () => {
  const runs = new Map<ServerKind, Run>();
  for (const [kind, skip] of [['ours', false], ['qemu', skipQemu]] as const) {
    test(`${kind}: events as they happen, speed honoured in real time, relative file names`, { skip }, async () => {
      const run = await backupRunningFree(kind);
      runs.set(kind, run);
      const transcript = run.transcript.map((line) => line.replace(/#block\d+/g, '#block').replace(/"sha256": "[0-9a-f]{64}"/, '"sha256": "SHA"'));
      assertSameLines(transcript, EXPECTED);
      // 2 MiB less the first cluster at 2 MiB/s, four clusters per 125 ms slice: about 0.76 s, not at once, not stuck.
      assert.ok(run.seconds > 0.6 && run.seconds < 2, `the rest of the copy took ${run.seconds} s`);
      assert.ok(run.midway > SIZE * 0.25 && run.midway < SIZE * 0.85, `half a second in, progress was ${run.midway}`);
      assert.ok(run.target.subarray(0, MiB).every((byte) => byte === 0x11), 'the target holds what the guest wrote');
    });
  }

  test('the same bitmap, bit for bit, and about the same time on both', { skip: skipQemu }, () => {
    const [ours, qemu] = [runs.get('ours'), runs.get('qemu')];
    assert.ok(ours && qemu, 'both runs above completed');
    const sha = (run: Run) => run.transcript.find((line) => line.includes('"sha256"'));
    assert.equal(sha(ours), sha(qemu));
    assert.ok(Math.abs(ours.seconds - qemu.seconds) < 0.2, `ours took ${ours.seconds} s, QEMU ${qemu.seconds} s`);
    assert.deepEqual(ours.target, qemu.target);
  });
});

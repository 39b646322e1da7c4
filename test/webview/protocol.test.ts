// The protocol's parsers, the host's snapshot and the density columns, in plain Node.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Engine } from '../../src/engine/engine';
import { QmpMonitor } from '../../src/engine/qmp/monitor';
import { playgroundSnapshot } from '../../src/extension/playground-snapshot';
import { MAX_EXTENTS_PER_BITMAP, parseFromWebview, parseToWebview } from '../../src/protocol';
import { columnCounts, columnOf, columnStart, type Run } from '../../webview/model';

const MiB = 1024 * 1024;

function playground(): { engine: Engine; qmp(execute: string, args: Record<string, unknown>): void } {
  const engine = new Engine();
  const monitor = new QmpMonitor(engine, { negotiated: true });
  return {
    engine,
    qmp(execute, args) {
      const reply = monitor.execute({ execute, arguments: args });
      assert.ok('return' in reply, JSON.stringify(reply));
    },
  };
}

test('the snapshot lists nodes and bitmaps with flags and dirty extents', () => {
  const { engine, qmp } = playground();
  qmp('blockdev-add', { driver: 'null-co', 'node-name': 'n0', size: 64 * MiB });
  qmp('block-dirty-bitmap-add', { node: 'n0', name: 'b0' });
  qmp('block-dirty-bitmap-add', { node: 'n0', name: 'off', disabled: true });
  engine.backend('n0').write(65536 + 1, new Uint8Array(1));
  engine.backend('n0').write(10 * 65536, new Uint8Array(3 * 65536));
  const snapshot = playgroundSnapshot(engine);
  assert.deepEqual(snapshot, {
    type: 'snapshot',
    version: 1,
    nodes: [
      {
        nodeName: 'n0',
        driver: 'null-co',
        length: 64 * MiB,
        bitmaps: [
          { name: 'off', size: 64 * MiB, granularity: 65536, count: 0, recording: false, busy: false, persistent: false, inconsistent: false, extents: [] },
          {
            name: 'b0',
            size: 64 * MiB,
            granularity: 65536,
            count: 4 * 65536,
            recording: true,
            busy: false,
            persistent: false,
            inconsistent: false,
            extents: [
              [65536, 2 * 65536],
              [10 * 65536, 13 * 65536],
            ],
          },
        ],
      },
    ],
  });
  assert.deepEqual(parseToWebview(JSON.parse(JSON.stringify(snapshot))), { message: snapshot });
});

test('the snapshot cuts a fragmented bitmap short and says so', () => {
  const { engine, qmp } = playground();
  qmp('blockdev-add', { driver: 'null-co', 'node-name': 'n0', size: 64 * MiB });
  qmp('block-dirty-bitmap-add', { node: 'n0', name: 'b0', granularity: 512 });
  for (let offset = 0; offset < 64 * MiB; offset += 4096) engine.backend('n0').write(offset, new Uint8Array(1));
  const [bitmap] = playgroundSnapshot(engine).nodes[0].bitmaps;
  assert.equal(bitmap.extents.length, MAX_EXTENTS_PER_BITMAP);
  assert.equal(bitmap.truncated, true);
  assert.equal(bitmap.count, (64 * MiB) / 4096 * 512, 'the count stays exact');
  assert.deepEqual(bitmap.extents.at(-1), [(MAX_EXTENTS_PER_BITMAP - 1) * 4096, (MAX_EXTENTS_PER_BITMAP - 1) * 4096 + 512]);
});

test('an anonymous successor is sent without a name, its parent as busy', () => {
  const { engine, qmp } = playground();
  qmp('blockdev-add', { driver: 'null-co', 'node-name': 'n0', size: MiB });
  qmp('block-dirty-bitmap-add', { node: 'n0', name: 'b0' });
  const node = engine.graph.find('n0');
  assert.ok(node);
  node.createSuccessor(node.bitmaps[0]);
  const [successor, parent] = playgroundSnapshot(engine).nodes[0].bitmaps;
  assert.equal('name' in successor, false);
  assert.equal(successor.recording, true);
  assert.equal(parent.busy, true);
  assert.equal(parent.recording, true, 'recording through its successor');
});

test('the webview accepts only ready, at version 1, and rebuilds it', () => {
  assert.deepEqual(parseFromWebview({ type: 'ready', version: 1, extra: 'dropped' }), { message: { type: 'ready', version: 1 } });
  const refused: [unknown, string][] = [
    [null, 'message: not an object'],
    [[], 'message: not an object'],
    [{ type: 'ready' }, 'version: expected 1, got undefined'],
    [{ type: 'ready', version: 2 }, 'version: expected 1, got 2'],
    [{ type: 'runQmp', version: 1 }, 'type: unknown message type "runQmp"'],
  ];
  for (const [data, error] of refused) assert.deepEqual(parseFromWebview(data), { error }, JSON.stringify(data));
});

test('snapshots with bad shapes or impossible extents are refused with where and why', () => {
  const bitmap = { size: MiB, granularity: 65536, count: 0, recording: true, busy: false, persistent: false, inconsistent: false, extents: [] };
  const node = { nodeName: 'n0', driver: 'null-co', length: MiB, bitmaps: [bitmap] };
  const snapshot = (changes: object) => ({ type: 'snapshot', version: 1, nodes: [{ ...node, bitmaps: [{ ...bitmap, ...changes }] }] });
  const refused: [unknown, string][] = [
    [{ type: 'snapshot', version: 1 }, 'nodes: not an array'],
    [{ type: 'snapshot', version: 1, nodes: [{ ...node, length: -1 }] }, 'nodes[0].length: not a byte count'],
    [snapshot({ size: undefined }), 'nodes[0].bitmaps[0].size: not a byte count'],
    [snapshot({ granularity: 0 }), 'nodes[0].bitmaps[0].granularity: is zero'],
    [snapshot({ name: 7 }), 'nodes[0].bitmaps[0].name: not a string'],
    [snapshot({ busy: 'yes' }), 'nodes[0].bitmaps[0].busy: not a boolean'],
    [snapshot({ truncated: 1 }), 'nodes[0].bitmaps[0].truncated: not a boolean'],
    [snapshot({ extents: [[0, MiB + 1]] }), 'nodes[0].bitmaps[0].extents[0]: not an ordered, disjoint, non-empty range inside the bitmap'],
    [snapshot({ extents: [[4, 4]] }), 'nodes[0].bitmaps[0].extents[0]: not an ordered, disjoint, non-empty range inside the bitmap'],
    [snapshot({ extents: [[0, 8], [4, 12]] }), 'nodes[0].bitmaps[0].extents[1]: not an ordered, disjoint, non-empty range inside the bitmap'],
    [snapshot({ extents: [[0, 8, 9]] }), 'nodes[0].bitmaps[0].extents[0]: not an ordered, disjoint, non-empty range inside the bitmap'],
    [snapshot({ extents: [[0.5, 8]] }), 'nodes[0].bitmaps[0].extents[0][0]: not a byte count'],
  ];
  for (const [data, error] of refused) assert.deepEqual(parseToWebview(data), { error }, JSON.stringify(data));
});

test('density columns count every dirty granule once, in the column that holds it', () => {
  let seed = 1;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let trial = 0; trial < 200; trial++) {
    const granules = 1 + Math.floor(random() * 5000);
    const columns = 1 + Math.floor(random() * Math.min(granules, 700));
    const runs: Run[] = [];
    for (let granule = 0; granule < granules; ) {
      const first = granule + Math.floor(random() * 40);
      const end = Math.min(granules, first + 1 + Math.floor(random() * 40));
      if (first < granules) runs.push([first, end]);
      granule = end + 1;
    }
    const expected = new Uint32Array(columns);
    for (const [first, end] of runs) {
      for (let granule = first; granule < end; granule++) {
        const column = columnOf(granule, granules, columns);
        assert.ok(columnStart(column, granules, columns) <= granule && granule < columnStart(column + 1, granules, columns));
        expected[column]++;
      }
    }
    assert.deepEqual(columnCounts(runs, granules, columns), expected, `${granules} granules in ${columns} columns`);
  }
});

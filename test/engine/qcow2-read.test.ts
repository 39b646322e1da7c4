/**
 * Reading the committed fixtures (made by test/fixtures/make-fixtures.sh with
 * QEMU 7.2): guest contents, block status, format information and persistent
 * bitmaps must be what QEMU reported for the same files. Needs no QEMU.
 */
import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { BlockNode } from '../../src/engine/block-node';
import { probeFormat } from '../../src/engine/drivers/open-image';
import { Qcow2Node } from '../../src/engine/drivers/qcow2/qcow2-node';
import { open } from '../support/qemu-img';

const FIXTURES = path.resolve(__dirname, '../../../test/fixtures');
const DIR = path.join(FIXTURES, 'qcow2');

interface MapEntry {
  start: number;
  length: number;
  depth: number;
  present: boolean;
  zero: boolean;
  data: boolean;
}
interface Expected {
  sha256: string;
  map: MapEntry[];
  info: { 'virtual-size': number; 'cluster-size': number; 'dirty-flag': boolean; 'format-specific': unknown };
  bitmaps: Array<Record<string, unknown> & { name: string; sha256: string }>;
}
const expected = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'qcow2-expected.json'), 'utf8')) as Record<string, Expected>;

function contentsSha256(node: BlockNode): string {
  const hash = createHash('sha256');
  const chunk = 1 << 20;
  for (let offset = 0; offset < node.length; offset += chunk) {
    hash.update(node.read(offset, Math.min(chunk, node.length - offset)));
  }
  return hash.digest('hex');
}

/** qemu-img map's walk: the first layer where the range is data or zero, merged without host offsets. */
function mapOf(top: BlockNode): MapEntry[] {
  const entries: MapEntry[] = [];
  for (let offset = 0; offset < top.length; ) {
    let node: BlockNode | undefined = top;
    let depth = 0;
    let bytes = top.length - offset;
    let status = node.blockStatus(offset, bytes);
    for (;;) {
      bytes = Math.min(bytes, status.length);
      if (status.zero || status.data) break;
      node = node.children.get('backing');
      if (!node) break;
      depth++;
      status = offset < node.length ? node.blockStatus(offset, bytes) : { length: bytes, zero: true, data: false, allocated: true };
    }
    entries.push({ start: offset, length: bytes, depth, present: status.allocated, zero: status.zero, data: status.data });
    offset += bytes;
  }
  return merge(entries);
}

function merge(entries: MapEntry[]): MapEntry[] {
  const merged: MapEntry[] = [];
  for (const { start, length, depth, present, zero, data } of entries) {
    const last = merged[merged.length - 1];
    if (last && last.depth === depth && last.present === present && last.zero === zero && last.data === data) {
      last.length += length;
    } else {
      merged.push({ start, length, depth, present, zero, data });
    }
  }
  return merged;
}

/** Objects equal whatever the order of their members. */
function sorted(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sorted);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, sorted(v)]));
  }
  return value;
}

describe('qcow2 fixtures read as QEMU reads them', () => {
  for (const [image, want] of Object.entries(expected)) {
    describe(image, () => {
      test('guest contents', () => {
        const node = open(path.join(DIR, image), { readOnly: true });
        try {
          assert.equal(node.length, want.info['virtual-size']);
          assert.equal(contentsSha256(node), want.sha256);
        } finally {
          node.close();
        }
      });

      test('block status down the chain', (t) => {
        if (image === 'raw-backed.qcow2') {
          // Holes in the raw file are data to us: Node has no SEEK_HOLE (see the file driver).
          t.diagnostic('compared above the raw backing layer only');
        }
        const node = open(path.join(DIR, image), { readOnly: true });
        try {
          const ours = mapOf(node);
          const theirs = merge(want.map.map(({ start, length, depth, present, zero, data }) => ({ start, length, depth, present, zero, data })));
          const keep = (entries: MapEntry[]) => (image === 'raw-backed.qcow2' ? merge(entries.filter((e) => e.depth === 0)) : entries);
          assert.deepEqual(keep(ours), keep(theirs));
        } finally {
          node.close();
        }
      });

      test('format information', () => {
        const node = open(path.join(DIR, image), { readOnly: true });
        try {
          const info = node.driverInfo()!;
          assert.equal(info.clusterSize, want.info['cluster-size']);
          assert.equal(info.dirty, want.info['dirty-flag']);
          assert.deepEqual(sorted(info.formatSpecific), sorted(want.info['format-specific']));
        } finally {
          node.close();
        }
      });

      test('allocation summary', () => {
        const node = open(path.join(DIR, image), { readOnly: true });
        try {
          const expectedSummary = { allocated: 0, zero: 0, unallocated: 0 };
          for (const entry of want.map) {
            const here = entry.depth === 0 && entry.present;
            if (here && entry.data) expectedSummary.allocated += entry.length;
            else if (here && entry.zero) expectedSummary.zero += entry.length;
            else expectedSummary.unallocated += entry.length;
          }
          assert.deepEqual((node as Qcow2Node).allocationSummary(), expectedSummary);
        } finally {
          node.close();
        }
      });

      test('persistent bitmaps, bit for bit', () => {
        const node = open(path.join(DIR, image), { readOnly: true });
        try {
          const ours = node.bitmaps.map((bitmap) => ({ ...bitmap.info(), sha256: bitmap.sha256() }));
          assert.deepEqual(ours.map((b) => sorted(b)), want.bitmaps.map((b) => sorted(b)));
          for (const bitmap of node.bitmaps) assert.equal(bitmap.readonly, true, `${bitmap.name} is readonly`);
        } finally {
          node.close();
        }
      });
    });
  }
});

describe('opening', () => {
  test('probing tells qcow2 from raw', () => {
    const raw = open(path.join(DIR, 'raw.img'), { readOnly: true });
    assert.equal(raw.driver, 'raw');
    assert.equal(probeFormat(raw.children.get('file')!), 'raw');
    raw.close();
    const qcow2 = open(path.join(DIR, 'plain.qcow2'), { readOnly: true });
    assert.equal(qcow2.driver, 'qcow2');
    qcow2.close();
  });

  test('a backing chain opens read-only, each layer from the name in its header', () => {
    const top = open(path.join(DIR, 'chain-top.qcow2'), { readOnly: true }) as Qcow2Node;
    try {
      const mid = top.backing as Qcow2Node;
      const base = mid.backing as Qcow2Node;
      assert.equal(top.backingFile, 'chain-mid.qcow2');
      assert.equal(mid.backingFile, 'chain-base.qcow2');
      assert.equal(base.backing, undefined);
      assert.equal(mid.common.readOnly, true);
      assert.equal(base.common.readOnly, true);
      assert.equal(mid.filename, path.join(DIR, 'chain-mid.qcow2'));
      // Past the end of the 2 MiB base, the 4 MiB chain reads zeroes.
      assert.deepEqual(top.read(3 * 1024 * 1024 + 8192, 16), new Uint8Array(16));
    } finally {
      top.close();
    }
  });

  test('opening read-only writes nothing', () => {
    for (const image of Object.keys(expected)) {
      const file = path.join(DIR, image);
      const before = fs.readFileSync(file);
      open(file, { readOnly: true }).close();
      assert.ok(before.equals(fs.readFileSync(file)), `${image} unchanged`);
    }
  });
});

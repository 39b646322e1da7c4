/** blockdev-add, blockdev-del and query-named-block-nodes for the drivers we have. */
import type { BlockGraph } from '../block-graph';
import { type BlockNode, type CommonNodeOptions } from '../block-node';
import { NullNode, type NullOptions } from '../drivers/null-co';
import { genericError } from '../qmp-error';
import { bool, enumOf, int, str, struct, uint64, type QapiType } from './qapi';

/** BlockdevDriver as Debian's QEMU 7.2 build lists it. */
const BLOCKDEV_DRIVERS = [
  'blkdebug', 'blklogwrites', 'blkreplay', 'blkverify', 'bochs', 'cloop', 'compress', 'copy-before-write',
  'copy-on-read', 'dmg', 'file', 'snapshot-access', 'ftp', 'ftps', 'gluster', 'host_cdrom', 'host_device', 'http',
  'https', 'iscsi', 'luks', 'nbd', 'nfs', 'null-aio', 'null-co', 'nvme', 'parallels', 'preallocate', 'qcow',
  'qcow2', 'qed', 'quorum', 'raw', 'rbd', 'replication', 'ssh', 'throttle', 'vdi', 'vhdx', 'vmdk', 'vpc', 'vvfat',
];

const nullOptions = { '*size': int, '*latency-ns': uint64, '*read-zeroes': bool };

export const blockdevOptionsType: QapiType = {
  kind: 'union',
  discriminator: 'driver',
  base: {
    driver: enumOf(BLOCKDEV_DRIVERS),
    '*node-name': str,
    '*discard': enumOf(['ignore', 'unmap']),
    '*cache': struct({ '*direct': bool, '*no-flush': bool }),
    '*read-only': bool,
    '*auto-read-only': bool,
    '*force-share': bool,
    '*detect-zeroes': enumOf(['off', 'on', 'unmap']),
  },
  variants: { 'null-co': nullOptions, 'null-aio': nullOptions },
};

export interface BlockdevOptions extends NullOptions {
  driver: string;
  'node-name'?: string;
  cache?: { direct?: boolean; 'no-flush'?: boolean };
  'read-only'?: boolean;
  discard?: 'ignore' | 'unmap';
  'detect-zeroes'?: CommonNodeOptions['detectZeroes'];
}

/** qmp_blockdev_add(). */
export function blockdevAdd(graph: BlockGraph, options: BlockdevOptions): Record<string, never> {
  const nodeName = options['node-name'];
  if (nodeName === undefined) throw genericError("'node-name' must be specified for the root node");
  if (options.driver !== 'null-co' && options.driver !== 'null-aio') {
    throw genericError(`Bitmap Lab does not implement the block driver '${options.driver}' yet`);
  }
  graph.checkNewNodeName(nodeName);
  // QEMU reads `size` as an option string and rejects (indeed aborts on) negatives.
  if (options.size !== undefined && options.size < 0) {
    throw genericError("Parameter 'size' expects a non-negative number below 2^64");
  }
  const common: CommonNodeOptions = {
    readOnly: options['read-only'] ?? false,
    discardUnmap: options.discard === 'unmap',
    detectZeroes: options['detect-zeroes'] ?? 'off',
    cache: { direct: options.cache?.direct ?? false, noFlush: options.cache?.['no-flush'] ?? false },
  };
  graph.add(new NullNode(nodeName, options.driver, options, common));
  return {};
}

/** qmp_blockdev_del(). */
export function blockdevDel(graph: BlockGraph, nodeName: string): Record<string, never> {
  if (!graph.find(nodeName)) throw genericError(`Failed to find node with node-name='${nodeName}'`);
  graph.delete(nodeName);
  return {};
}

/** One BlockDeviceInfo of query-named-block-nodes. */
export function blockDeviceInfo(node: BlockNode): Record<string, unknown> {
  const { readOnly, detectZeroes, cache } = node.common;
  return {
    file: node.filename,
    'node-name': node.nodeName,
    ro: readOnly,
    drv: node.driver,
    backing_file_depth: 0,
    encrypted: false,
    detect_zeroes: detectZeroes,
    bps: 0, bps_rd: 0, bps_wr: 0, iops: 0, iops_rd: 0, iops_wr: 0,
    image: { filename: node.filename, format: node.driver, 'virtual-size': node.length, 'actual-size': node.actualSize },
    cache: { writeback: true, direct: cache.direct, 'no-flush': cache.noFlush },
    write_threshold: 0,
    ...(node.bitmaps.length > 0 && { 'dirty-bitmaps': node.bitmaps.map((bitmap) => bitmap.info()) }),
  };
}

export function queryNamedBlockNodes(graph: BlockGraph): Array<Record<string, unknown>> {
  return graph.list().map(blockDeviceInfo);
}

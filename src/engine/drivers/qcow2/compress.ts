/**
 * qcow2_compress() for compression type zlib: raw deflate, a 4 KiB window,
 * the default level, into at most one byte less than a cluster.
 */
import { constants as zlibConstants, deflateRawSync } from 'node:zlib';

/** deflateInit2(Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY). */
const DEFLATE_OPTIONS = {
  level: zlibConstants.Z_DEFAULT_COMPRESSION,
  windowBits: 12,
  memLevel: 9,
  strategy: zlibConstants.Z_DEFAULT_STRATEGY,
};

/**
 * One whole cluster compressed, or undefined when the stream does not end
 * within `cluster.length - 1` bytes (QEMU's -ENOMEM: the cluster is then
 * written uncompressed).
 */
export function compressCluster(cluster: Uint8Array): Uint8Array | undefined {
  const out = deflateRawSync(cluster, DEFLATE_OPTIONS);
  return out.length < cluster.length ? out : undefined;
}

/**
 * The qcow2 runtime options (BlockdevOptionsQcow2) and what they decide:
 * the sizes of the metadata caches (read_cache_sizes()) and which metadata
 * the overlap check guards.
 */
import type { BlockNode } from '../../block-node';
import { genericError } from '../../qmp-error';
import { Qcow2Cache } from './cache';
import { MiB } from './format';
import { OL_ALL, OL_CACHED, OL_CONSTANT, type CorruptionReport, type Qcow2State } from './state';

/** The qcow2 members of blockdev-add (BlockdevOptionsQcow2), as QAPI names them. */
export interface Qcow2Options {
  'lazy-refcounts'?: boolean;
  'pass-discard-request'?: boolean;
  'pass-discard-snapshot'?: boolean;
  'pass-discard-other'?: boolean;
  'overlap-check'?: 'none' | 'constant' | 'cached' | 'all' | { template?: 'none' | 'constant' | 'cached' | 'all' };
  'cache-size'?: number;
  'l2-cache-size'?: number;
  'l2-cache-entry-size'?: number;
  'refcount-cache-size'?: number;
  'cache-clean-interval'?: number;
}

export interface Qcow2OpenConfig {
  /** The backing node; `null` for none; absent to open what the header names. */
  backing?: BlockNode | null;
  /** Opens the backing file the header names (a path already resolved against the image's directory). */
  openBacking?: (filename: string, format: string | undefined) => BlockNode;
  options?: Qcow2Options;
  /** BLOCK_IMAGE_CORRUPTED. */
  onCorruption?: (report: CorruptionReport) => void;
  /** What QEMU prints to stderr (warn_report, error_report). */
  warn?: (message: string) => void;
}

const DEFAULT_L2_CACHE_MAX_SIZE = 32 * MiB;
const MIN_L2_CACHE_SIZE = 2;
const MIN_REFCOUNT_CACHE_SIZE = 4;
const INT_MAX = 2 ** 31 - 1;

export interface CacheSizes {
  l2Entries: number;
  l2EntrySize: number;
  refcountEntries: number;
}

export function createCaches(s: Qcow2State, caches: CacheSizes): void {
  s.l2SliceSize = caches.l2EntrySize / 8;
  s.l2Cache = new Qcow2Cache(s, 'l2', caches.l2Entries, caches.l2EntrySize);
  s.refcountCache = new Qcow2Cache(s, 'refblock', caches.refcountEntries, s.clusterSize);
}

/** read_cache_sizes() and the minimums of qcow2_update_options_prepare(). */
export function readCacheSizes(
  options: Qcow2Options,
  clusterSize: number,
  diskSize: number,
): CacheSizes {
  const minRefcountCache = MIN_REFCOUNT_CACHE_SIZE * clusterSize;
  const maxL2Cache = Math.ceil((Math.ceil(diskSize / clusterSize) * 8) / clusterSize) * clusterSize;
  const combinedSet = options['cache-size'] !== undefined;
  const l2Set = options['l2-cache-size'] !== undefined;
  const refcountSet = options['refcount-cache-size'] !== undefined;
  const combined = options['cache-size'] ?? 0;
  const l2Max = options['l2-cache-size'] ?? DEFAULT_L2_CACHE_MAX_SIZE;
  let refcountCache = options['refcount-cache-size'] ?? 0;
  let l2EntrySize = options['l2-cache-entry-size'] ?? clusterSize;
  let l2Cache = Math.min(maxL2Cache, l2Max);
  if (combinedSet) {
    if (l2Set && refcountSet) {
      throw genericError('cache-size, l2-cache-size and refcount-cache-size may not be set at the same time');
    } else if (l2Set && l2Max > combined) {
      throw genericError('l2-cache-size may not exceed cache-size');
    } else if (refcountCache > combined) {
      throw genericError('refcount-cache-size may not exceed cache-size');
    }
    if (l2Set) {
      refcountCache = combined - l2Cache;
    } else if (refcountSet) {
      l2Cache = combined - refcountCache;
    } else if (combined >= maxL2Cache + minRefcountCache) {
      l2Cache = maxL2Cache;
      refcountCache = combined - l2Cache;
    } else {
      refcountCache = Math.min(combined, minRefcountCache);
      l2Cache = combined - refcountCache;
    }
  }
  if (l2Cache < maxL2Cache && options['l2-cache-entry-size'] === undefined) l2EntrySize = Math.min(clusterSize, 4096);
  if (l2EntrySize < 512 || l2EntrySize > clusterSize || (l2EntrySize & (l2EntrySize - 1)) !== 0) {
    throw genericError(`L2 cache entry size must be a power of two between 512 and the cluster size (${clusterSize})`);
  }
  let l2Entries = Math.floor(l2Cache / l2EntrySize);
  if (l2Entries < MIN_L2_CACHE_SIZE) l2Entries = MIN_L2_CACHE_SIZE;
  if (l2Entries > INT_MAX) throw genericError('L2 cache size too big');
  let refcountEntries = Math.floor(refcountCache / clusterSize);
  if (refcountEntries < MIN_REFCOUNT_CACHE_SIZE) refcountEntries = MIN_REFCOUNT_CACHE_SIZE;
  if (refcountEntries > INT_MAX) throw genericError('Refcount cache size too big');
  return { l2Entries, l2EntrySize, refcountEntries };
}

/** The overlap-check template (QCOW2_OL_* bits). */
export function overlapTemplate(option: Qcow2Options['overlap-check']): number {
  const name = typeof option === 'string' ? option : (option?.template ?? 'cached');
  switch (name) {
    case 'none':
      return 0;
    case 'constant':
      return OL_CONSTANT;
    case 'cached':
      return OL_CACHED;
    case 'all':
      return OL_ALL;
  }
  throw genericError(
    `Unsupported value '${String(name)}' for qcow2 option 'overlap-check'. Allowed are any of the following: none, constant, cached, all`,
  );
}



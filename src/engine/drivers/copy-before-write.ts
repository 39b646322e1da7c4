/**
 * The `copy-before-write` filter (block/copy-before-write.c), inserted above
 * a backup's source: before a guest write reaches the source, the clusters it
 * touches that are still in the copy bitmap are copied to the target, so the
 * target keeps the image as it was when the job started.
 */
import { BlockCopyState } from '../block-copy';
import { BlockNode, type BlockStatus, type CommonNodeOptions } from '../block-node';
import type { DirtyBitmap } from '../dirty-bitmap';
import type { Scheduler } from '../scheduler';

export class CopyBeforeWriteNode extends BlockNode {
  readonly driver = 'copy-before-write';
  readonly bcs: BlockCopyState;
  /** Clusters this filter has copied on behalf of guest writes. */
  readonly doneBitmap: DirtyBitmap;
  /** Regions a snapshot reader may access: all that is to be backed up. */
  readonly accessBitmap: DirtyBitmap;

  constructor(
    nodeName: string,
    scheduler: Scheduler,
    private readonly source: BlockNode,
    target: BlockNode,
    clusterSize: number,
    compress: boolean,
    common: CommonNodeOptions,
    /** Told of each copy, for the timeline. */
    onCopied?: (offset: number, bytes: number, zeroes: boolean, beforeWrite: boolean) => void,
  ) {
    super(nodeName, source.length, common);
    this.children.set('file', source);
    this.children.set('target', target);
    // block_copy_state_new(): the copy bitmap lives on the source, all set.
    const copyBitmap = source.createBitmap(clusterSize);
    copyBitmap.disabled = true;
    copyBitmap.markDirty(0, source.length);
    this.bcs = new BlockCopyState(scheduler, source, target, copyBitmap, { clusterSize, compress, onCopied });
    this.doneBitmap = this.createBitmap(clusterSize);
    this.doneBitmap.disabled = true;
    this.accessBitmap = this.createBitmap(clusterSize);
    this.accessBitmap.disabled = true;
    this.accessBitmap.mergeInternal(copyBitmap);
  }

  protected override get isFilter(): boolean {
    return true;
  }

  /** Nobody may write to the source behind the filter's back. */
  override unsharedWriteRole(child: BlockNode): string | undefined {
    return child === this.source ? 'file' : undefined;
  }

  /** cbw_refresh_filename(): the source's name. */
  override exactFilename(): string {
    return this.source.filename;
  }

  get actualSize(): number | undefined {
    return this.source.actualSize;
  }

  override get length(): number {
    return this.source.length;
  }

  /** Releases what the filter made: its own bitmaps, and the copy bitmap on the source. */
  override close(): void {
    this.releaseBitmap(this.accessBitmap);
    this.releaseBitmap(this.doneBitmap);
    this.source.releaseBitmap(this.bcs.copyBitmap);
  }

  /** cbw_do_copy_before_write(): copy the touched clusters first, then mark them done. */
  private copyBeforeWrite(offset: number, bytes: number): void {
    const cluster = this.bcs.clusterSize;
    const start = Math.floor(offset / cluster) * cluster;
    const end = Math.ceil((offset + bytes) / cluster) * cluster;
    this.bcs.copyNow(start, end - start);
    this.doneBitmap.markDirty(start, end - start);
  }

  protected driverRead(offset: number, buffer: Uint8Array): void {
    buffer.set(this.source.read(offset, buffer.length));
  }

  protected driverWrite(offset: number, data: Uint8Array): void {
    this.copyBeforeWrite(offset, data.length);
    this.source.write(offset, data);
  }

  protected override driverWriteZeroes(offset: number, bytes: number, mayUnmap: boolean): void {
    this.copyBeforeWrite(offset, bytes);
    this.source.writeZeroes(offset, bytes, mayUnmap);
  }

  protected override driverDiscard(offset: number, bytes: number): boolean {
    this.copyBeforeWrite(offset, bytes);
    this.source.discard(offset, bytes);
    return true;
  }

  protected override driverFlush(): void {
    this.source.flush();
  }

  blockStatus(offset: number, bytes: number): BlockStatus {
    return this.source.blockStatus(offset, bytes);
  }
}

/**
 * What a guest device sees of a node (QEMU's BlockBackend): requests are
 * bounded by the node's length, and writing needs the write permission,
 * which a read-only node cannot give.
 */
import type { BlockNode } from './block-node';
import { ERRNO, IoError } from './io-error';
import { genericError } from './qmp-error';

export class BlockBackend {
  constructor(readonly node: BlockNode) {}

  read(offset: number, bytes: number): Uint8Array {
    this.checkRequest(offset, bytes);
    return this.node.read(offset, bytes);
  }

  write(offset: number, data: Uint8Array): void {
    this.checkWritable();
    this.checkRequest(offset, data.length);
    this.node.write(offset, data);
  }

  writeZeroes(offset: number, bytes: number, mayUnmap = false): void {
    this.checkWritable();
    this.checkRequest(offset, bytes);
    this.node.writeZeroes(offset, bytes, mayUnmap);
  }

  discard(offset: number, bytes: number): void {
    this.checkWritable();
    this.checkRequest(offset, bytes);
    this.node.discard(offset, bytes);
  }

  flush(): void {
    this.node.flush();
  }

  /** blk_set_perm() for WRITE: a permission error, not an I/O error. */
  checkWritable(): void {
    if (this.node.common.readOnly) throw genericError('Block node is read-only');
  }

  /** blk_check_byte_request(). */
  private checkRequest(offset: number, bytes: number): void {
    const length = this.node.length;
    if (offset < 0 || bytes < 0 || offset > length || length - offset < bytes) throw new IoError(ERRNO.EIO);
  }
}

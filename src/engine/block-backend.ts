/**
 * What a guest device sees of a node (QEMU's BlockBackend): requests are
 * bounded by the node's length, and writing needs the write permission,
 * which a read-only node cannot give.
 */
import type { BlockGraph } from './block-graph';
import type { BlockNode } from './block-node';
import { ERRNO, IoError } from './io-error';
import { genericError } from './qmp-error';

export class BlockBackend {
  constructor(
    readonly node: BlockNode,
    private readonly graph: BlockGraph,
    /** Told of each guest write, write-zeroes and discard that succeeded. */
    private readonly written: (kind: 'write' | 'zero' | 'discard', offset: number, bytes: number) => void = () => {},
  ) {}

  read(offset: number, bytes: number): Uint8Array {
    this.checkRequest(offset, bytes);
    return this.node.read(offset, bytes);
  }

  write(offset: number, data: Uint8Array): void {
    this.checkWritable();
    this.checkRequest(offset, data.length);
    this.node.write(offset, data);
    this.written('write', offset, data.length);
  }

  writeZeroes(offset: number, bytes: number, mayUnmap = false): void {
    this.checkWritable();
    this.checkRequest(offset, bytes);
    this.node.writeZeroes(offset, bytes, mayUnmap);
    this.written('zero', offset, bytes);
  }

  discard(offset: number, bytes: number): void {
    this.checkWritable();
    this.checkRequest(offset, bytes);
    if (this.node.discard(offset, bytes)) this.written('discard', offset, bytes);
  }

  flush(): void {
    this.node.flush();
  }

  /**
   * blk_set_perm() for WRITE: a permission error, not an I/O error. A parent
   * that must not see the node change (a backup's filter) refuses to share it.
   */
  checkWritable(): void {
    if (this.node.common.readOnly) throw genericError('Block node is read-only');
    for (const parent of this.graph.parentsOf(this.node)) {
      const role = parent.unsharedWriteRole(this.node);
      if (role === undefined) continue;
      const name = this.node.nodeName;
      throw genericError(
        `Permission conflict on node '${name}': permissions 'write' are both required by an unnamed block device (uses node '${name}' as 'root' child) and unshared by node '${parent.nodeName}' (uses node '${name}' as '${role}' child).`,
      );
    }
  }

  /** blk_check_byte_request(). */
  private checkRequest(offset: number, bytes: number): void {
    const length = this.node.length;
    if (offset < 0 || bytes < 0 || offset > length || length - offset < bytes) throw new IoError(ERRNO.EIO);
  }
}

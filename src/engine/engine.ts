/** One emulated QEMU: its block graph, and the guest I/O that dirties bitmaps. */
import { BlockGraph } from './block-graph';

export class Engine {
  readonly graph = new BlockGraph();

  /**
   * A guest write (or write-zeroes, or discard) of `bytes` at `offset` on a
   * node: every enabled bitmap of the node gets the overlapped granules.
   */
  guestWrite(nodeName: string, offset: number, bytes: number): void {
    const node = this.graph.find(nodeName);
    if (!node) throw new RangeError(`no node named '${nodeName}'`);
    if (offset < 0 || bytes < 0 || offset + bytes > node.length) {
      throw new RangeError(`write of ${bytes} bytes at ${offset} is outside node '${nodeName}' (${node.length} bytes)`);
    }
    node.markDirty(offset, bytes);
  }
}

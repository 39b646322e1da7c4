/** The named block nodes of one engine, and QEMU's ways of looking them up. */
import type { BlockNode } from './block-node';
import type { DirtyBitmap } from './dirty-bitmap';
import { genericError } from './qmp-error';

const NODE_NAME_MAX_BYTES = 31;
const utf8 = new TextEncoder();

export class BlockGraph {
  private readonly nodes = new Map<string, BlockNode>();

  /** Newest first, the order of query-named-block-nodes. */
  list(): BlockNode[] {
    return [...this.nodes.values()].reverse();
  }

  find(nodeName: string): BlockNode | undefined {
    return this.nodes.get(nodeName);
  }

  /** bdrv_assign_node_name(): the checks, in QEMU's order. */
  checkNewNodeName(nodeName: string): void {
    if (!/^[A-Za-z][A-Za-z0-9._-]*$/.test(nodeName)) throw genericError(`Invalid node-name: '${nodeName}'`);
    if (this.nodes.has(nodeName)) throw genericError(`Duplicate nodes with node-name='${nodeName}'`);
    if (utf8.encode(nodeName).length > NODE_NAME_MAX_BYTES) throw genericError('Node name too long');
  }

  add(node: BlockNode): void {
    this.checkNewNodeName(node.nodeName);
    this.nodes.set(node.nodeName, node);
  }

  delete(nodeName: string): void {
    this.nodes.delete(nodeName);
  }

  /** bdrv_lookup_bs(): by device name or node name (we have no devices). */
  lookupDeviceOrNode(name: string): BlockNode {
    const node = this.nodes.get(name);
    if (!node) throw genericError(`Cannot find device='${name}' nor node-name='${name}'`);
    return node;
  }

  /** block_dirty_bitmap_lookup(). */
  lookupBitmap(nodeName: string, name: string): { node: BlockNode; bitmap: DirtyBitmap } {
    const node = this.nodes.get(nodeName);
    if (!node) throw genericError(`Node '${nodeName}' not found`);
    const bitmap = node.findBitmap(name);
    if (!bitmap) throw genericError(`Dirty bitmap '${name}' not found`);
    return { node, bitmap };
  }
}

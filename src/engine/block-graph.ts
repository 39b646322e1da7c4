/** The named block nodes of one engine, and QEMU's ways of looking them up. */
import type { BlockNode } from './block-node';
import type { DirtyBitmap } from './dirty-bitmap';
import { genericError } from './qmp-error';

const NODE_NAME_MAX_BYTES = 31;
const utf8 = new TextEncoder();

export class BlockGraph {
  /** In naming order; a name is reserved (undefined) while its node is being opened. */
  private readonly nodes = new Map<string, BlockNode | undefined>();
  /** Nodes that blockdev-add made and blockdev-del may delete. */
  private readonly monitorOwned = new Set<BlockNode>();
  private autoNames = 0;

  /** Newest first, the order of query-named-block-nodes. */
  list(): BlockNode[] {
    return [...this.nodes.values()].filter((node) => node !== undefined).reverse();
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

  /**
   * Takes a node's name at the point QEMU names it (bdrv_assign_node_name()),
   * which fixes its place in the lists; add() fills it in. Names given by users
   * are checked first (checkNewNodeName); auto names are unique.
   */
  reserve(nodeName: string): void {
    if (!this.nodes.has(nodeName)) this.nodes.set(nodeName, undefined);
  }

  add(node: BlockNode): void {
    this.nodes.set(node.nodeName, node);
  }

  /**
   * A name for a node the user did not name. QEMU appends two random digits
   * to a counter (`#block018`); ours are derived from the counter, so runs
   * repeat.
   */
  autoNodeName(): string {
    const n = this.autoNames++;
    return `#block${n}${String((n * 37 + 11) % 100).padStart(2, '0')}`;
  }

  /** Runs `open`; if it throws, the nodes it added are closed and forgotten. */
  transaction(open: () => void): void {
    const before = new Set(this.nodes.keys());
    try {
      open();
    } catch (error) {
      for (const [name, node] of [...this.nodes].reverse()) {
        if (before.has(name)) continue;
        node?.close();
        this.nodes.delete(name);
      }
      throw error;
    }
  }

  setMonitorOwned(node: BlockNode): void {
    this.monitorOwned.add(node);
  }

  isMonitorOwned(node: BlockNode): boolean {
    return this.monitorOwned.has(node);
  }

  parentsOf(node: BlockNode): BlockNode[] {
    return this.list().filter((parent) => [...parent.children.values()].includes(node));
  }

  /** Whether `node` is `from` or below it. */
  reaches(from: BlockNode, node: BlockNode): boolean {
    return from === node || [...from.children.values()].some((child) => this.reaches(child, node));
  }

  /** An implicit node (a job's filter) leaves the graph and is closed. */
  remove(node: BlockNode): void {
    this.nodes.delete(node.nodeName);
    node.close();
  }

  /** blockdev-del and quit: the monitor drops its reference to `node`. */
  release(node: BlockNode): void {
    this.monitorOwned.delete(node);
    this.unref(node);
  }

  /** quit: every node is closed, parents first, so formats can store their bitmaps. */
  closeAll(): void {
    for (const node of [...this.monitorOwned]) this.release(node);
  }

  /** bdrv_unref(): a node nobody holds is closed, then its children are released in turn. */
  private unref(node: BlockNode): void {
    if (this.monitorOwned.has(node) || this.parentsOf(node).length > 0) return;
    node.close();
    this.nodes.delete(node.nodeName);
    for (const child of new Set(node.children.values())) this.unref(child);
  }

  /** bdrv_lookup_bs(): by device name, then node name (we have no devices yet). */
  lookupDeviceOrNode(device: string, nodeName: string): BlockNode {
    const node = this.nodes.get(nodeName);
    if (!node) throw genericError(`Cannot find device='${device}' nor node-name='${nodeName}'`);
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

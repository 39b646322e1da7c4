/** One emulated QEMU: its block graph, how nodes are opened, and guest I/O. */
import { BlockBackend } from './block-backend';
import { BlockGraph } from './block-graph';
import { NodeOpener } from './qmp/block-commands';

export class Engine {
  readonly graph = new BlockGraph();
  readonly opener = new NodeOpener(this.graph);
  /** Where QEMU would print on its stdout and stderr (qemu-io's reports). */
  console: (text: string, stream: 'stdout' | 'stderr') => void = () => {};

  /** A guest's view of a node, as qemu-io gets one (bdrv_lookup_bs() by name). */
  backend(nodeName: string): BlockBackend {
    return new BlockBackend(this.graph.lookupDeviceOrNode('', nodeName));
  }
}

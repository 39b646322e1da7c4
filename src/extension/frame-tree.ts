/** The native tree of the current frame: nodes and their bitmaps, jobs, and the frame's events. */
import * as vscode from 'vscode';
import { ROLE_NAMES, formatSize } from '../format';
import type { BitmapMeta } from '../engine/timeline/frame';
import type { ScenarioSession } from './scenario-session';

type Item = { label: string; description?: string; tooltip?: string; icon?: string; children?: Item[] };


const human = formatSize;

function bitmapItem(meta: BitmapMeta): Item {
  const flags = [meta.recording ? 'recording' : 'disabled', meta.busy && 'busy', meta.persistent && 'persistent', meta.inconsistent && 'inconsistent'].filter(Boolean);
  return {
    label: meta.name ?? ROLE_NAMES[meta.role],
    description: `${human(meta.count)} · ${human(meta.granularity)} granules · ${flags.join(', ')}`,
    tooltip: `${ROLE_NAMES[meta.role]} on ${meta.node}`,
    icon: meta.busy ? 'lock' : meta.recording ? 'record' : 'circle-outline',
  };
}

export class FrameTree implements vscode.TreeDataProvider<Item>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;
  private session: ScenarioSession | undefined;
  private listener: vscode.Disposable | undefined;

  show(session: ScenarioSession | undefined): void {
    this.listener?.dispose();
    this.session = session;
    this.listener = session?.onDidChange(() => this.changed.fire());
    this.changed.fire();
  }

  getTreeItem(item: Item): vscode.TreeItem {
    const tree = new vscode.TreeItem(item.label, item.children?.length ? vscode.TreeItemCollapsibleState.Expanded : vscode.TreeItemCollapsibleState.None);
    tree.description = item.description;
    tree.tooltip = item.tooltip;
    if (item.icon) tree.iconPath = new vscode.ThemeIcon(item.icon);
    return tree;
  }

  getChildren(item?: Item): Item[] {
    if (item) return item.children ?? [];
    const session = this.session;
    if (!session) return [];
    const state = session.state();
    const frame = state.frame;
    const nodes = new Map<string, Item[]>();
    for (const { meta } of state.bitmaps.values()) nodes.set(meta.node, [...(nodes.get(meta.node) ?? []), bitmapItem(meta)]);
    return [
      { label: `Frame ${frame.index} / ${session.length - 1}`, description: `${frame.cause.kind}: ${frame.cause.label}`, icon: 'debug-stackframe', tooltip: frame.narration },
      ...[...nodes].map(([node, bitmaps]) => ({ label: node, description: 'node', icon: 'database', children: bitmaps })),
      ...state.jobs.map((job) => ({
        label: `job ${job.id}`,
        description: `${job.status} · ${human(job.current)} of ${human(job.total)}${job.error ? ` · ${job.error}` : ''}`,
        icon: job.error ? 'error' : 'sync',
      })),
      ...(frame.events.length
        ? [{ label: 'Events', icon: 'bell', children: frame.events.map((e) => ({ label: e.event, description: JSON.stringify(e.data) })) }]
        : []),
    ];
  }

  dispose(): void {
    this.listener?.dispose();
    this.changed.dispose();
  }
}

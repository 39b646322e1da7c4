/**
 * Runs one sequence of steps on real QEMU and on our engine and records, for
 * each side, every reply and the state of every node afterwards, so a test
 * can compare the two transcripts whole.
 */
import { Engine } from '../../src/engine/engine';
import { QmpMonitor } from '../../src/engine/qmp/monitor';
import { QemuProcess } from './qemu';

export type Step =
  | { execute: string; arguments?: Record<string, unknown> }
  /** A guest write through qemu-io (discards come with image files: null-co ignores them). */
  | { io: 'write' | 'write -z'; node: string; offset: number; bytes: number };

export interface Transcript {
  step: string;
  reply: unknown;
  nodes: unknown;
  sha256: Record<string, string>;
}

interface Side {
  execute(request: Record<string, unknown>): Promise<unknown>;
  io(step: Extract<Step, { io: string }>): Promise<void>;
}

type NodeInfo = { 'node-name': string; 'dirty-bitmaps'?: Array<{ name?: string }> };

async function snapshot(side: Side): Promise<Pick<Transcript, 'nodes' | 'sha256'>> {
  const reply = (await side.execute({ execute: 'query-named-block-nodes' })) as { return: NodeInfo[] };
  const sha256: Record<string, string> = {};
  for (const node of reply.return) {
    for (const { name } of node['dirty-bitmaps'] ?? []) {
      if (name === undefined) continue;
      const digest = (await side.execute({
        execute: 'x-debug-block-dirty-bitmap-sha256',
        arguments: { node: node['node-name'], name },
      })) as { return: { sha256: string } };
      sha256[`${node['node-name']}/${name}`] = digest.return.sha256;
    }
  }
  return { nodes: reply.return, sha256 };
}

async function record(side: Side, steps: Step[]): Promise<Transcript[]> {
  const transcript: Transcript[] = [];
  for (const step of steps) {
    let reply: unknown;
    if ('io' in step) await side.io(step);
    else reply = await side.execute(step);
    transcript.push({ step: JSON.stringify(step), reply, ...(await snapshot(side)) });
  }
  return transcript;
}

export async function onQemu(steps: Step[]): Promise<Transcript[]> {
  const qemu = await QemuProcess.start();
  try {
    return await record(
      {
        execute: (request) => qemu.sendRaw(JSON.stringify(request)),
        async io({ io, node, offset, bytes }) {
          const line = `qemu-io ${node} "${io} ${offset} ${bytes}"`;
          const reply = await qemu.execute('human-monitor-command', { 'command-line': line });
          if (reply.error) throw new Error(`${line}: ${reply.error.desc}`);
        },
      },
      steps,
    );
  } finally {
    await qemu.quit();
  }
}

export function onEngine(steps: Step[]): Promise<Transcript[]> {
  const engine = new Engine();
  const monitor = new QmpMonitor(engine, { negotiated: true });
  return record(
    {
      execute: async (request) => monitor.execute(request),
      io: async ({ node, offset, bytes }) => engine.guestWrite(node, offset, bytes),
    },
    steps,
  );
}

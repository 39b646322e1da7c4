/**
 * The scenario debugger, driven as VS Code drives it (DAP requests in,
 * responses and events out) on the always-failure example and small
 * scenarios of our own.
 */
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { DebugProtocol } from '@vscode/debugprotocol';
import { ScenarioDebugSession, type DebugHost } from '../../src/debug/session';
import { stepLines } from '../../src/debug/positions';
import { parseScenario } from '../../src/engine/scenario/parse';
import { runScenario } from '../../src/engine/scenario/runner';

const EXAMPLE = path.resolve(__dirname, '../../../examples/always-failure.bitmaplab.json');
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'bitmap-lab-debug-'));
after(() => fs.rmSync(scratch, { recursive: true, force: true }));

const host = (shown: number[] = []): DebugHost => ({
  async load(file) {
    const text = fs.readFileSync(file, 'utf8');
    const scenario = parseScenario(text, file);
    return { file, text, scenario, run: runScenario(scenario, fs.mkdtempSync(path.join(scratch, 'run-'))) };
  },
  read: (file) => fs.readFileSync(file, 'utf8'),
  show: (_target, frame) => shown.push(frame),
});

/** A DAP client of one session: requests answered in order, events kept. */
class Client {
  private seq = 1;
  private readonly waiting = new Map<number, (response: DebugProtocol.Response) => void>();
  readonly events: DebugProtocol.Event[] = [];
  private eventWaiters: Array<() => void> = [];

  constructor(readonly session: ScenarioDebugSession) {
    session.onDidSendMessage((message) => {
      const m = message as DebugProtocol.ProtocolMessage;
      if (m.type === 'response') this.waiting.get((m as DebugProtocol.Response).request_seq)?.(m as DebugProtocol.Response);
      if (m.type === 'event') {
        this.events.push(m as DebugProtocol.Event);
        for (const wake of this.eventWaiters.splice(0)) wake();
      }
    });
  }

  request<T = any>(command: string, args?: unknown): Promise<DebugProtocol.Response & { body: T }> {
    const seq = this.seq++;
    return new Promise((resolve) => {
      this.waiting.set(seq, resolve as (response: DebugProtocol.Response) => void);
      this.session.handleMessage({ seq, type: 'request', command, arguments: args } as DebugProtocol.Request);
    });
  }

  /** The next `stopped` event after the events seen so far. */
  async stopped(action: () => Promise<unknown>): Promise<DebugProtocol.StoppedEvent['body']> {
    const before = this.events.length;
    await action();
    for (;;) {
      const event = this.events.slice(before).find((e) => e.event === 'stopped');
      if (event) return event.body;
      await new Promise<void>((resolve) => this.eventWaiters.push(resolve));
    }
  }

  async where(): Promise<{ name: string; line: number }> {
    const { body } = await this.request('stackTrace', { threadId: 1 });
    return { name: body.stackFrames[0].name, line: body.stackFrames[0].line };
  }

  /** Every variable of a scope, by name, with its value. */
  async variables(scope: string): Promise<Record<string, string>> {
    const { body } = await this.request('scopes', { frameId: 1 });
    const ref = body.scopes.find((s: { name: string }) => s.name === scope).variablesReference;
    const vars = (await this.request('variables', { variablesReference: ref })).body.variables as Array<{ name: string; value: string }>;
    return Object.fromEntries(vars.map((v) => [v.name, v.value]));
  }
}

async function launch(file: string, shown?: number[], before?: (client: Client) => Promise<void>): Promise<Client> {
  const client = new Client(new ScenarioDebugSession(host(shown)));
  const init = await client.request('initialize', INITIALIZE);
  assert.equal(init.body.supportsStepBack, true);
  await before?.(client);
  const stopped = client.stopped(async () => {
    const launched = client.request('launch', { scenario: file });
    await client.request('configurationDone');
    assert.equal((await launched).success, true);
  });
  assert.equal((await stopped).reason, 'entry');
  return client;
}

/** What VS Code sends. */
const INITIALIZE = { adapterID: 'bitmaplab', pathFormat: 'path', linesStartAt1: true, columnsStartAt1: true };

const lines = stepLines(fs.readFileSync(EXAMPLE, 'utf8'));

test('stops on entry before the first step; breakpoints sit on steps; continue stops before the step', async () => {
  const shown: number[] = [];
  const client = await launch(EXAMPLE, shown, async (c) => {
    const { body } = await c.request('setBreakpoints', { source: { path: EXAMPLE }, breakpoints: [{ line: lines[5][0] + 2 }, { line: 1 }] });
    assert.deepEqual(body.breakpoints.map((b: { verified: boolean; line: number }) => [b.verified, b.line]), [[true, lines[5][0]], [false, 1]]);
  });
  assert.deepEqual(await client.where(), { name: 'steps[0] block-dirty-bitmap-add (next)', line: lines[0][0] });
  assert.match(client.events.find((e) => e.event === 'output')?.body.output, /^steps\[0\]: bitmap0 starts recording/);
  assert.deepEqual(await client.stopped(() => client.request('continue', { threadId: 1 })), { reason: 'breakpoint', threadId: 1 });
  assert.deepEqual(await client.where(), { name: 'steps[5] block-job-set-speed (next)', line: lines[5][0] });
  const bitmaps = await client.variables('Bitmaps');
  assert.equal(bitmaps['drive0/bitmap0'], '4 MiB dirty · recording, busy');
  assert.equal(bitmaps['drive0/successor N'], '128 KiB dirty · recording');
  assert.equal((await client.variables('Jobs')).inc0, 'running · 1.063 MiB of 4 MiB');
  // The panel followed each stop.
  assert.ok(shown.length === 2 && shown[1] > shown[0]);
});

test('next runs a step whole, step in and step back move one frame, reverse continue returns to the breakpoint', async () => {
  const client = await launch(EXAMPLE, undefined, async (c) => {
    await c.request('setBreakpoints', { source: { path: EXAMPLE }, breakpoints: [{ line: lines[4][0] }] });
  });
  await client.stopped(() => client.request('continue', { threadId: 1 }));
  assert.equal((await client.where()).name, 'steps[4] write cbw 12M+64k (next)');
  await client.stopped(() => client.request('next', { threadId: 1 }));
  assert.equal((await client.where()).name, 'steps[5] block-job-set-speed (next)');
  await client.stopped(() => client.request('stepIn', { threadId: 1 }));
  const into = await client.where();
  assert.match(into.name, /^steps\[5\] block-job-set-speed · frame (\d+): /);
  const frame = Number(/frame (\d+)/.exec(into.name)![1]);
  await client.stopped(() => client.request('stepIn', { threadId: 1 }));
  assert.match((await client.where()).name, new RegExp(`frame ${frame + 1}:`));
  await client.stopped(() => client.request('stepBack', { threadId: 1 }));
  assert.match((await client.where()).name, new RegExp(`frame ${frame}:`));
  assert.deepEqual(await client.stopped(() => client.request('reverseContinue', { threadId: 1 })), { reason: 'breakpoint', threadId: 1 });
  assert.equal((await client.where()).name, 'steps[4] write cbw 12M+64k (next)');
  assert.deepEqual(await client.stopped(() => client.request('reverseContinue', { threadId: 1 })), { reason: 'entry', threadId: 1 });
});

test('job errors and a watched bitmap stop the run; the end of the timeline stops it too', async () => {
  const client = await launch(EXAMPLE);
  await client.request('setExceptionBreakpoints', { filters: ['job-error'] });
  const error = await client.stopped(() => client.request('continue', { threadId: 1 }));
  assert.equal(error.reason, 'exception');
  assert.match((await client.request('exceptionInfo', { threadId: 1 })).body.description, /^BLOCK_JOB_ERROR \{"device":"inc0","operation":"read","action":"report"\}/);
  await client.request('setExceptionBreakpoints', { filters: [] });
  const info = await client.request('dataBreakpointInfo', { name: 'drive0/bitmap0' });
  assert.equal(info.body.dataId, 'drive0/bitmap0');
  assert.equal((await client.request('dataBreakpointInfo', { name: 'drive0/nothing' })).body.dataId, null);
  await client.request('setDataBreakpoints', { breakpoints: [{ dataId: 'drive0/bitmap0' }] });
  assert.equal((await client.stopped(() => client.request('continue', { threadId: 1 }))).reason, 'data breakpoint');
  assert.match((await client.where()).name, /· frame \d+: abdicate$/);
  assert.equal((await client.variables('Bitmaps'))['drive0/bitmap0'], '128 KiB dirty · recording');
  assert.equal((await client.stopped(() => client.request('continue', { threadId: 1 }))).reason, 'data breakpoint');
  assert.match((await client.where()).name, /· frame \d+: merge-copy-bitmap$/);
  await client.request('setDataBreakpoints', { breakpoints: [] });
  const end = await client.stopped(() => client.request('continue', { threadId: 1 }));
  assert.equal(end.reason, 'end');
  assert.match((await client.where()).name, /^steps\[8\] job-dismiss · frame \d+: quit$/);
});

test('a failed expectation stops after its step; a scenario that does not parse is refused at launch', async () => {
  const file = path.join(scratch, 'wrong.bitmaplab.json');
  fs.writeFileSync(file, JSON.stringify({
    title: 'wrong',
    images: [{ name: 'd', format: 'raw', size: '1M' }],
    steps: [
      { qmp: { execute: 'block-dirty-bitmap-add', arguments: { node: 'd', name: 'b' } } },
      { write: { node: 'd', offset: 0, length: '64k' }, expect: { bitmap: { node: 'd', name: 'b', count: '128k' } } },
      { narration: 'after' },
    ],
  }, null, 2));
  const client = await launch(file);
  const stopped = await client.stopped(() => client.request('continue', { threadId: 1 }));
  assert.deepEqual([stopped.reason, (stopped as { text?: string }).text], ['exception', 'bitmap d/b: count is 65536, expected 131072']);
  assert.match((await client.where()).name, /^steps\[1\] write d 0\+64k · frame \d+/);
  assert.equal((await client.request('exceptionInfo', { threadId: 1 })).body.exceptionId, 'expectation');

  fs.writeFileSync(file, '{"title": "t", "images": []}');
  const refused = new Client(new ScenarioDebugSession(host()));
  await refused.request('initialize', INITIALIZE);
  const response = await refused.request('launch', { scenario: file });
  assert.equal(response.success, false);
  assert.match(response.message ?? '', /^Cannot debug .*wrong\.bitmaplab\.json: .*images: must NOT have fewer than 1 items/s);
});

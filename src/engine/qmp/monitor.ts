/**
 * QEMU's QMP dispatcher (qapi/qmp-dispatch.c and monitor/qmp.c): request
 * shape checks, command lookup, capabilities negotiation, argument visiting,
 * and errors as QMP replies. Nothing thrown by a command escapes.
 */
import type { Engine } from '../engine';
import { QFloat } from '../qfloat';
import { QmpError, genericError, type ErrorClass } from '../qmp-error';
import { qdictOrder } from '../qobject';
import * as bitmaps from './bitmap-commands';
import { blockdevAdd, blockdevDel, blockdevOptionsType, queryNamedBlockNodes, type BlockdevOptions } from './block-commands';
import { QEMU_COMMAND_ORDER } from './command-order';
import { humanMonitorCommand } from './hmp';
import { arrayOf, bool, enumOf, int, str, struct, visit, type QapiType } from './qapi';
import { JOB_COMMANDS, blockdevBackupType } from './job-commands';
import { driveBackupType } from './drive-backup';
import { transaction, transactionType, type TransactionArgs } from './transaction';

export type QmpResponse =
  | { return: unknown; id?: unknown }
  | { error: { class: ErrorClass; desc: string }; id?: unknown };

export const QEMU_VERSION = { major: 7, minor: 2, micro: 22 };
export const PACKAGE = 'Bitmap Lab 0.1.0';

interface Command {
  args: QapiType;
  run(engine: Engine, args: any): unknown;
}

const noArgs = struct({});

/** Runs a bitmap action outside a transaction: prepare, then commit. */
const runAlone = (action: bitmaps.Action) => {
  action.prepare();
  action.commit();
  return {};
};

const COMMANDS: Record<string, Command> = {
  qmp_capabilities: { args: struct({ '*enable': arrayOf(enumOf(['oob'])) }), run: () => ({}) },
  'query-version': { args: noArgs, run: () => ({ qemu: QEMU_VERSION, package: PACKAGE }) },
  'blockdev-add': { args: blockdevOptionsType, run: (e, a: BlockdevOptions) => blockdevAdd(e.graph, e.opener, a) },
  'blockdev-del': { args: struct({ 'node-name': str }), run: (e, a) => blockdevDel(e.graph, a['node-name']) },
  'query-named-block-nodes': { args: struct({ '*flat': bool }), run: (e, a) => queryNamedBlockNodes(e.graph, a.flat) },
  'block-dirty-bitmap-add': {
    args: bitmaps.blockDirtyBitmapAddType,
    run: (e, a) => runAlone(bitmaps.addAction(e.graph, a)),
  },
  'block-dirty-bitmap-remove': {
    args: bitmaps.blockDirtyBitmapType,
    run: (e, a) => runAlone(bitmaps.removeAction(e.graph, a)),
  },
  'block-dirty-bitmap-clear': {
    args: bitmaps.blockDirtyBitmapType,
    run: (e, a) => runAlone(bitmaps.clearAction(e.graph, a)),
  },
  'block-dirty-bitmap-enable': {
    args: bitmaps.blockDirtyBitmapType,
    run: (e, a) => runAlone(bitmaps.setEnabledAction(e.graph, a, true)),
  },
  'block-dirty-bitmap-disable': {
    args: bitmaps.blockDirtyBitmapType,
    run: (e, a) => runAlone(bitmaps.setEnabledAction(e.graph, a, false)),
  },
  'block-dirty-bitmap-merge': {
    args: bitmaps.blockDirtyBitmapMergeType,
    run: (e, a) => runAlone(bitmaps.mergeAction(e.graph, a)),
  },
  'x-debug-block-dirty-bitmap-sha256': { args: bitmaps.blockDirtyBitmapType, run: (e, a) => bitmaps.sha256(e.graph, a) },
  transaction: { args: transactionType, run: (e, a: TransactionArgs) => transaction(e, a) },
  /** A transaction of one action, as QEMU runs it. */
  'blockdev-backup': {
    args: blockdevBackupType,
    run: (e, a) => transaction(e, { actions: [{ type: 'blockdev-backup', data: a }] }),
  },
  'drive-backup': {
    args: driveBackupType,
    run: (e, a) => transaction(e, { actions: [{ type: 'drive-backup', data: a }] }),
  },
  ...JOB_COMMANDS,
  /** Announces the shutdown, cancels every job, closes every node (storing persistent bitmaps); the QMP server then exits. */
  quit: {
    args: noArgs,
    run: (e) => {
      e.emit('SHUTDOWN', { guest: false, reason: 'host-qmp-quit' });
      e.shutdown();
      return {};
    },
  },
  'query-commands': { args: noArgs, run: () => queryCommands() },
  'human-monitor-command': {
    args: struct({ 'command-line': str, '*cpu-index': int }),
    run: (e, a) => humanMonitorCommand(e, a['command-line']),
  },
};

/** Names of the commands this monitor knows, for query-commands and clients. */
export const COMMAND_NAMES = Object.keys(COMMANDS);

/** Ours in the order QEMU lists its commands (command-order.ts). */
function queryCommands(): Array<{ name: string }> {
  const rank = (name: string) => (QEMU_COMMAND_ORDER.includes(name) ? QEMU_COMMAND_ORDER.indexOf(name) : Infinity);
  return [...COMMAND_NAMES].sort((a, b) => rank(a) - rank(b)).map((name) => ({ name }));
}

/** A JSON object; a QFloat is a boxed number, not an object. */
const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof QFloat);

/**
 * qmp_dispatch_check_obj(): the shape of the request itself. `exec-oob`
 * names the command instead of `execute` once the client enabled OOB.
 */
function checkRequest(request: unknown, allowOob: boolean): { command: string; oob: boolean; args: Record<string, unknown> } {
  if (!isObject(request)) throw genericError('QMP input must be a JSON object');
  let command: string | undefined;
  let oob = false;
  // QEMU checks the members in QDict order, so with several problems the first one there is reported.
  for (const key of qdictOrder(Object.keys(request))) {
    const value = request[key];
    if (key === 'execute' || (key === 'exec-oob' && allowOob)) {
      if (typeof value !== 'string') throw genericError(`QMP input member '${key}' must be a string`);
      if (command !== undefined) throw genericError("QMP input member 'execute' clashes with 'exec-oob'");
      command = value;
      oob = key === 'exec-oob';
    } else if (key === 'arguments') {
      if (!isObject(value)) throw genericError("QMP input member 'arguments' must be an object");
    } else if (key !== 'id') {
      throw genericError(`QMP input member '${key}' is unexpected`);
    }
  }
  if (command === undefined) throw genericError("QMP input lacks member 'execute'");
  return { command, oob, args: (request.arguments as Record<string, unknown> | undefined) ?? {} };
}

/** An event as QMP sends it. */
export interface QmpEvent {
  event: string;
  data: Record<string, unknown>;
  timestamp: { seconds: number; microseconds: number };
}

export class QmpMonitor {
  private negotiated: boolean;
  /** The client enabled the `oob` capability (it may then send `exec-oob`). */
  private oob = false;
  private events: QmpEvent[] = [];
  private readonly stopListening: () => void;

  /** A monitor starts in capabilities negotiation mode, as QEMU's does. */
  constructor(readonly engine: Engine, options: { negotiated?: boolean } = {}) {
    this.negotiated = options.negotiated ?? false;
    this.stopListening = engine.onEvent(({ kind, name, data }) => {
      if (kind !== 'qmp') return;
      const now = Date.now();
      this.events.push({ event: name, data, timestamp: { seconds: Math.floor(now / 1000), microseconds: (now % 1000) * 1000 } });
    });
  }

  /** The client is gone (a QMP endpoint keeps its engine for the next one): stop collecting events. */
  close(): void {
    this.stopListening();
    this.events = [];
  }

  /** Events emitted since the last call, oldest first. */
  takeEvents(): QmpEvent[] {
    const events = this.events;
    this.events = [];
    return events;
  }

  /**
   * Runs one command, then lets everything it set going run until it waits
   * for time or input (a job copying, or parked), as QEMU's main loop would.
   */
  execute(request: unknown): QmpResponse {
    const id = isObject(request) ? request.id : undefined;
    const withId = <T extends object>(reply: T) => (id === undefined ? reply : { ...reply, id });
    try {
      return withId({ return: this.dispatch(request) });
    } catch (error) {
      // A bug of ours still answers as an error rather than taking the host down.
      const qmpError = error instanceof QmpError ? error : genericError(`Bitmap Lab internal error: ${String(error)}`);
      return withId({ error: { class: qmpError.errorClass, desc: qmpError.desc } });
    } finally {
      this.engine.note('command', { execute: isObject(request) ? request.execute : undefined });
      this.engine.scheduler.settle();
    }
  }

  private dispatch(request: unknown): unknown {
    const { command, oob, args } = checkRequest(request, this.oob);
    const handler = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
    if (!this.negotiated && command !== 'qmp_capabilities') {
      throw new QmpError('CommandNotFound', "Expecting capabilities negotiation with 'qmp_capabilities'");
    }
    if (!handler) throw new QmpError('CommandNotFound', `The command ${command} has not been found`);
    // None of our commands is one of QEMU's few out-of-band ones.
    if (oob) throw genericError(`The command ${command} does not support OOB`);
    const visited = visit(handler.args, args);
    if (command === 'qmp_capabilities') {
      if (this.negotiated) {
        throw new QmpError('CommandNotFound', 'Capabilities negotiation is already complete, command ignored');
      }
      this.negotiated = true;
      this.oob = (visited as { enable?: string[] }).enable?.includes('oob') ?? false;
    }
    return handler.run(this.engine, visited);
  }
}

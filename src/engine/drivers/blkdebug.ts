/**
 * The `blkdebug` filter (block/blkdebug.c): passes I/O to its image child and
 * fails chosen requests. An event announced by the driver above (read_aio,
 * write_aio, ...) runs the rules registered for it in the current state:
 * set-state rules move the state machine, inject-error rules become active;
 * the requests that follow fail with an active rule's errno.
 */
import { BlockNode, type BlkdebugEvent, type BlockStatus, type CommonNodeOptions, SECTOR } from '../block-node';
import { ERRNO, IoError } from '../io-error';

export const BLKDEBUG_IO_TYPES = ['read', 'write', 'write-zeroes', 'discard', 'flush', 'block-status'] as const;
type IoType = (typeof BLKDEBUG_IO_TYPES)[number];

export interface InjectErrorOptions {
  event: BlkdebugEvent;
  state?: number;
  iotype?: IoType;
  errno?: number;
  sector?: number;
  once?: boolean;
  immediately?: boolean;
}

export interface SetStateOptions {
  event: BlkdebugEvent;
  state?: number;
  new_state: number;
}

interface InjectRule {
  kind: 'inject';
  event: BlkdebugEvent;
  state: number;
  errno: number;
  /** Byte offset the request must cover, or -1 for any request. */
  offset: number;
  iotypes: ReadonlySet<IoType>;
  once: boolean;
}

interface SetStateRule {
  kind: 'set-state';
  event: BlkdebugEvent;
  state: number;
  newState: number;
}

type Rule = InjectRule | SetStateRule;

/** Without `iotype`, a rule fails every kind of request but block status. */
const DEFAULT_IOTYPES: ReadonlySet<IoType> = new Set(['read', 'write', 'write-zeroes', 'discard', 'flush']);

export class BlkdebugNode extends BlockNode {
  readonly driver = 'blkdebug';
  /** Rules per event, newest first: QEMU inserts each at the head of its list. */
  private readonly rules = new Map<BlkdebugEvent, Rule[]>();
  private activeRules: InjectRule[] = [];
  private state = 1;

  constructor(
    nodeName: string,
    private readonly image: BlockNode,
    injectErrors: InjectErrorOptions[],
    setStates: SetStateOptions[],
    common: CommonNodeOptions,
  ) {
    super(nodeName, image.length, common);
    this.children.set('image', image);
    // QEMU reads the inject-error rules, then the set-state rules.
    for (const options of injectErrors) this.addRule(injectRule(options));
    for (const options of setStates) {
      this.addRule({ kind: 'set-state', event: options.event, state: options.state ?? 0, newState: options.new_state });
    }
  }

  protected override get isFilter(): boolean {
    return true;
  }

  protected override get strongRuntimeOptions(): readonly string[] {
    return ['config', 'inject-error.', 'set-state.', 'align', 'max-transfer', 'opt-write-zero', 'max-write-zero', 'opt-discard', 'max-discard'];
  }

  /** blkdebug cannot say how much it occupies; QEMU then omits the field. */
  get actualSize(): undefined {
    return undefined;
  }

  override get length(): number {
    return this.image.length;
  }

  /** Writes past the end grow the file below. */
  override get growable(): boolean {
    return this.image.growable;
  }

  /** blkdebug_debug_event(): rules compare with the state as it was when the event came. */
  override debugEvent(event: BlkdebugEvent): void {
    let newState = this.state;
    let injected = false;
    for (const rule of this.rules.get(event) ?? []) {
      if (rule.state && rule.state !== this.state) continue;
      if (rule.kind === 'set-state') {
        newState = rule.newState;
      } else {
        if (!injected) this.activeRules = [];
        injected = true;
        this.activeRules.unshift(rule);
      }
    }
    this.state = newState;
  }

  protected driverRead(offset: number, buffer: Uint8Array): void {
    this.check(offset, buffer.length, 'read');
    buffer.set(this.image.read(offset, buffer.length));
  }

  protected driverWrite(offset: number, data: Uint8Array): void {
    this.check(offset, data.length, 'write');
    this.image.write(offset, data);
  }

  protected override driverWriteZeroes(offset: number, bytes: number, mayUnmap: boolean): void {
    this.check(offset, bytes, 'write-zeroes');
    this.image.writeZeroes(offset, bytes, mayUnmap);
  }

  protected override driverDiscard(offset: number, bytes: number): boolean {
    this.check(offset, bytes, 'discard');
    this.image.discard(offset, bytes);
    return true;
  }

  protected override driverFlush(): void {
    this.check(0, 0, 'flush');
    this.image.flush();
  }

  blockStatus(offset: number, bytes: number): BlockStatus {
    this.check(offset, bytes, 'block-status');
    return this.image.blockStatus(offset, bytes);
  }

  override truncate(bytes: number): void {
    this.image.truncate(bytes);
  }

  override close(): void {
    this.image.close();
  }

  private addRule(rule: Rule): void {
    const list = this.rules.get(rule.event) ?? [];
    list.unshift(rule);
    this.rules.set(rule.event, list);
  }

  /** rule_check(): the first active rule that covers the request fails it. */
  private check(offset: number, bytes: number, iotype: IoType): void {
    const rule = this.activeRules.find(
      (candidate) =>
        (candidate.offset === -1 || (bytes > 0 && candidate.offset >= offset && candidate.offset < offset + bytes)) &&
        candidate.iotypes.has(iotype),
    );
    if (!rule || rule.errno === 0) return;
    if (rule.once) {
      this.activeRules.splice(this.activeRules.indexOf(rule), 1);
      const list = this.rules.get(rule.event)!;
      list.splice(list.indexOf(rule), 1);
    }
    throw new IoError(rule.errno);
  }
}

function injectRule(options: InjectErrorOptions): InjectRule {
  const sector = options.sector ?? -1;
  return {
    kind: 'inject',
    event: options.event,
    state: options.state ?? 0,
    errno: options.errno ?? ERRNO.EIO,
    offset: sector === -1 ? -1 : sector * SECTOR,
    iotypes: options.iotype ? new Set([options.iotype]) : DEFAULT_IOTYPES,
    once: options.once ?? false,
  };
}

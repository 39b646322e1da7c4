/** The `null-co` and `null-aio` drivers: a node of a given length that stores nothing. */
import { BlockNode, type BlockStatus, type CommonNodeOptions } from '../block-node';

export interface NullOptions {
  size?: number;
  'latency-ns'?: number;
  'read-zeroes'?: boolean;
}

const DEFAULT_SIZE = 1 << 30;

export class NullNode extends BlockNode {
  constructor(
    nodeName: string,
    readonly driver: 'null-co' | 'null-aio',
    private readonly config: NullOptions,
    common: CommonNodeOptions,
  ) {
    super(nodeName, config.size ?? DEFAULT_SIZE, common);
  }

  protected override get strongRuntimeOptions(): readonly string[] {
    return ['size', 'read-zeroes'];
  }

  /** null_refresh_filename(): `null-co://` while no strong option was given. */
  override exactFilename(): string | undefined {
    const keys = Object.keys(this.fullOpenOptions());
    return keys.every((key) => key === 'driver') ? `${this.driver}://` : undefined;
  }

  get actualSize(): number {
    return 0;
  }

  /** Without read-zeroes QEMU leaves the buffer as it was; ours is always fresh zeroes. */
  protected driverRead(): void {}

  protected driverWrite(): void {}

  blockStatus(_offset: number, bytes: number): BlockStatus {
    const zero = this.config['read-zeroes'] ?? false;
    return { length: bytes, zero, data: false, allocated: zero };
  }
}

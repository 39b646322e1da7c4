/** The `null-co` and `null-aio` drivers: a node of a given length that stores nothing. */
import { BlockNode, type BlockStatus, type CommonNodeOptions } from '../block-node';
import { toQemuJson } from '../qobject';

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
    private readonly options: NullOptions,
    common: CommonNodeOptions,
  ) {
    super(nodeName, options.size ?? DEFAULT_SIZE, common);
  }

  /**
   * bdrv_refresh_filename(): `null-co://` unless an option that changes what
   * the node is (size, read-zeroes) was given; then the json: form.
   */
  get filename(): string {
    const { size, 'read-zeroes': readZeroes } = this.options;
    if (size === undefined && readZeroes === undefined) return `${this.driver}://`;
    return `json:${toQemuJson({ size, 'read-zeroes': readZeroes, driver: this.driver })}`;
  }

  get actualSize(): number {
    return 0;
  }

  /** Without read-zeroes QEMU leaves the buffer as it was; ours is always fresh zeroes. */
  protected driverRead(): void {}

  protected driverWrite(): void {}

  blockStatus(_offset: number, bytes: number): BlockStatus {
    const zero = this.options['read-zeroes'] ?? false;
    return { length: bytes, zero, data: false, allocated: zero };
  }
}

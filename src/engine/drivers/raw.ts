/** The `raw` format driver: the file child's bytes, optionally a window of them. */
import { BlockNode, SECTOR, type BlockStatus, type CommonNodeOptions, type DriverInfo } from '../block-node';
import { genericError } from '../qmp-error';

export class RawNode extends BlockNode {
  readonly driver = 'raw';

  constructor(
    nodeName: string,
    private readonly file: BlockNode,
    private readonly offset: number,
    size: number | undefined,
    common: CommonNodeOptions,
  ) {
    const available = file.length - offset;
    if (available < 0) {
      throw genericError(`Offset (${offset}) cannot be greater than size of the containing file (${file.length})`);
    }
    if (size !== undefined && available < size) {
      throw genericError(
        `The sum of offset (${offset}) and size (${size}) has to be smaller or equal to the  actual size of the containing file (${file.length})`,
      );
    }
    if (size !== undefined && size % SECTOR !== 0) throw genericError(`Specified size is not multiple of ${SECTOR}`);
    super(nodeName, size ?? available, common);
    this.children.set('file', file);
  }

  protected override get strongRuntimeOptions(): readonly string[] {
    return ['offset', 'size'];
  }

  /** raw_get_info(): what the file says, or nothing when the file has no info (null-co). */
  override driverInfo(): DriverInfo | undefined {
    const info = this.file.driverInfo();
    return info && { clusterSize: info.clusterSize, dirty: info.dirty };
  }

  get actualSize(): number | undefined {
    return this.file.actualSize;
  }

  protected driverRead(offset: number, buffer: Uint8Array): void {
    this.debugEvent('read_aio');
    buffer.set(this.file.read(this.offset + offset, buffer.length));
  }

  protected driverWrite(offset: number, data: Uint8Array): void {
    this.debugEvent('write_aio');
    this.file.write(this.offset + offset, data);
  }

  protected override driverWriteZeroes(offset: number, bytes: number, mayUnmap: boolean): void {
    this.file.writeZeroes(this.offset + offset, bytes, mayUnmap);
  }

  protected override driverDiscard(offset: number, bytes: number): boolean {
    this.file.discard(this.offset + offset, bytes);
    return true;
  }

  protected override driverFlush(): void {
    this.file.flush();
  }

  blockStatus(offset: number, bytes: number): BlockStatus {
    return this.file.blockStatus(this.offset + offset, bytes);
  }
}

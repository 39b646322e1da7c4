/**
 * QAPI types and QEMU's QObject input visitor: the argument checking every
 * QMP command goes through, with QEMU 7.2's messages and order (members in
 * schema order, a struct's unexpected members after all its members).
 */
import { QFloat } from '../qfloat';
import { genericError } from '../qmp-error';
import { qdictOrder } from '../qobject';
import { firstUnexpected } from './ghash-order';

export type QapiType =
  | { kind: 'str' | 'bool' | 'int' | 'uint64' | 'uint32' | 'number' | 'any' }
  | { kind: 'enum'; values: readonly string[] }
  | { kind: 'array'; element: QapiType }
  | { kind: 'struct'; members: Members }
  | { kind: 'alternate'; name: string; string?: QapiType; object?: QapiType; null?: true }
  | { kind: 'union'; base: Members; discriminator: string; variants: Readonly<Record<string, Members>> }
  /** A recursive type, resolved when visited (BlockdevRef holds BlockdevOptions). */
  | { kind: 'lazy'; resolve: () => QapiType };

/** Member names as in QAPI schemas: a leading `*` marks an optional member. */
export type Members = Readonly<Record<string, QapiType>>;

export const str: QapiType = { kind: 'str' };
export const bool: QapiType = { kind: 'bool' };
export const int: QapiType = { kind: 'int' };
export const uint32: QapiType = { kind: 'uint32' };
export const uint64: QapiType = { kind: 'uint64' };
export const enumOf = (values: readonly string[]): QapiType => ({ kind: 'enum', values });
export const arrayOf = (element: QapiType): QapiType => ({ kind: 'array', element });
export const struct = (members: Members): QapiType => ({ kind: 'struct', members });

type Json = unknown;
const isObject = (value: Json): value is Record<string, Json> =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof QFloat);

const invalidType = (path: string, expected: string) =>
  genericError(`Invalid parameter type for '${path}', expected: ${expected}`);

const UINT64_LIMIT = 2n ** 64n;
const INT64_LIMIT = 2n ** 63n;

/**
 * A JSON integer, exactly: a bigint off the wire or an integral JavaScript
 * number; undefined for anything else, a QFloat included (qfloat.ts).
 */
function integerOf(value: Json): bigint | undefined {
  if (typeof value === 'bigint') return value;
  return typeof value === 'number' && Number.isInteger(value) ? BigInt(value) : undefined;
}

/** Position in the input, for QEMU's full_name(): `a.b[2].c`; null at the top. */
class Path {
  constructor(
    private readonly parent: Path | undefined,
    readonly name: string | undefined,
    private readonly index?: number,
  ) {}
  member(name: string): Path {
    return new Path(this, name);
  }
  element(index: number): Path {
    return new Path(this, undefined, index);
  }
  full(): string {
    const head = this.parent?.full();
    const own = this.index !== undefined ? `[${this.index}]` : (this.name ?? '');
    if (head === undefined || head === 'null') return own || 'null';
    return this.index !== undefined ? head + own : `${head}.${own}`;
  }
  /** QEMU reports some errors with the bare member name, not the full path. */
  short(): string {
    return this.name ?? 'null';
  }
}

/** Visits `value` as `type`, returning it or throwing QEMU's error. */
export function visit(type: QapiType, value: Json): Json {
  return visitAt(type, value, new Path(undefined, undefined));
}

function visitAt(type: QapiType, value: Json, path: Path): Json {
  switch (type.kind) {
    case 'str':
      if (typeof value !== 'string') throw invalidType(path.full(), 'string');
      return value;
    case 'bool':
      if (typeof value !== 'boolean') throw invalidType(path.full(), 'boolean');
      return value;
    case 'number':
      if (value instanceof QFloat) return value.value;
      if (typeof value !== 'number' && typeof value !== 'bigint') throw invalidType(path.full(), 'number');
      return Number(value);
    case 'any':
      return value;
    case 'int': {
      const integer = integerOf(value);
      if (integer === undefined || integer < -INT64_LIMIT || integer >= INT64_LIMIT) throw invalidType(path.full(), 'integer');
      return Number(integer);
    }
    case 'uint64':
    case 'uint32':
      return visitUnsigned(type.kind, value, path);
    case 'enum':
      if (typeof value !== 'string') throw invalidType(path.full(), 'string');
      if (!type.values.includes(value)) {
        throw genericError(`Parameter '${path.short()}' does not accept value '${value}'`);
      }
      return value;
    case 'array':
      if (!Array.isArray(value)) throw invalidType(path.full(), 'array');
      return value.map((element, i) => visitAt(type.element, element, path.element(i)));
    case 'struct':
      return visitStruct(type.members, value, path);
    case 'alternate': {
      if (value === null && type.null) return null;
      const branch = typeof value === 'string' ? type.string : isObject(value) ? type.object : undefined;
      if (!branch) throw invalidType(path.short(), type.name);
      return visitAt(branch, value, path);
    }
    case 'union':
      return visitUnion(type, value, path);
    case 'lazy':
      return visitAt(type.resolve(), value, path);
  }
}

function visitUnsigned(kind: 'uint32' | 'uint64', value: Json, path: Path): number {
  // QEMU takes negative int64 values as their two's complement, then range checks.
  const integer = integerOf(value);
  if (integer === undefined || integer < -INT64_LIMIT || integer >= UINT64_LIMIT) {
    throw genericError(`Parameter '${path.full()}' expects uint64`);
  }
  const unsigned = integer < 0n ? integer + UINT64_LIMIT : integer;
  if (kind === 'uint32' && unsigned > 0xffffffffn) {
    throw genericError(`Parameter '${path.short()}' expects uint32_t`);
  }
  return Number(unsigned);
}

function visitMembers(members: Members, input: Record<string, Json>, path: Path, out: Record<string, Json>): void {
  for (const [key, type] of Object.entries(members)) {
    const optional = key.startsWith('*');
    const name = optional ? key.slice(1) : key;
    if (!(name in input)) {
      if (optional) continue;
      throw genericError(`Parameter '${path.member(name).full()}' is missing`);
    }
    out[name] = visitAt(type, input[name], path.member(name));
  }
}

/** qobject_input_check_struct(): the first key left in QEMU's GHashTable once the visited members are gone. */
function checkUnexpected(input: Record<string, Json>, out: Record<string, Json>, path: Path): void {
  const key = firstUnexpected(qdictOrder(Object.keys(input)), Object.keys(out));
  if (key !== undefined) throw genericError(`Parameter '${path.member(key).full()}' is unexpected`);
}

function visitStruct(members: Members, value: Json, path: Path): Record<string, Json> {
  if (!isObject(value)) throw invalidType(path.full(), 'object');
  const out: Record<string, Json> = {};
  visitMembers(members, value, path, out);
  checkUnexpected(value, out, path);
  return out;
}

function visitUnion(type: Extract<QapiType, { kind: 'union' }>, value: Json, path: Path): Record<string, Json> {
  if (!isObject(value)) throw invalidType(path.full(), 'object');
  const out: Record<string, Json> = {};
  visitMembers(type.base, value, path, out);
  const variant = type.variants[out[type.discriminator] as string];
  if (variant) visitMembers(variant, value, path, out);
  checkUnexpected(value, out, path);
  return out;
}

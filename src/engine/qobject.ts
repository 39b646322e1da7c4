/**
 * QEMU's QObject JSON rendering. A QDict iterates its 512 hash buckets in
 * order (tdb_hash of the key), newest entry first within a bucket, so this
 * reproduces the member order QEMU prints, byte for byte.
 */

const BUCKETS = 512;
const utf8 = new TextEncoder();

function tdbHash(key: string): number {
  const bytes = utf8.encode(key);
  let value = Math.imul(0x238f13af, bytes.length) >>> 0;
  for (let i = 0; i < bytes.length; i++) value = (value + ((bytes[i] << ((i * 5) % 24)) >>> 0)) >>> 0;
  return (Math.imul(1103515243, value) + 12345) >>> 0;
}

/** The keys of a dict built by inserting `keys` in order, as QEMU iterates them. */
export function qdictOrder(keys: readonly string[]): string[] {
  return keys
    .map((key, inserted) => ({ key, inserted, bucket: tdbHash(key) % BUCKETS }))
    .sort((a, b) => a.bucket - b.bucket || b.inserted - a.inserted)
    .map((entry) => entry.key);
}

/** qobject_to_json(): `{"a": 1, "b": [2, 3]}` with QEMU's member order. */
export function toQemuJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(toQemuJson).join(', ')}]`;
  if (typeof value === 'object' && value !== null) {
    const record = value as Record<string, unknown>;
    const keys = qdictOrder(Object.keys(record).filter((key) => record[key] !== undefined));
    return `{${keys.map((key) => `${JSON.stringify(key)}: ${toQemuJson(record[key])}`).join(', ')}}`;
  }
  return JSON.stringify(value);
}

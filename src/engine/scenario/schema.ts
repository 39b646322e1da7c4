/**
 * The JSON Schema of scenario files (*.bitmaplab.json). The build writes it
 * to schema/bitmaplab.schema.json for editors; the runner validates with it.
 */

const size = {
  description: 'Bytes: a number, or a string with a binary suffix (64k, 1M, 2G).',
  oneOf: [
    { type: 'integer', minimum: 0 },
    { type: 'string', pattern: '^(0x[0-9a-fA-F]+|[0-9]+(\\.[0-9]+)?[bBkKmMgGtT]?)$' },
  ],
};

/** The schema of byte counts, which error messages describe in their own words. */
export const SIZE_SCHEMA = size;

const narration = { type: 'string', description: 'Markdown shown while this step is in force.' };

const range = {
  type: 'object',
  required: ['node', 'offset', 'length'],
  additionalProperties: false,
  properties: {
    node: { type: 'string', description: 'Node to write to, as named in images or by QMP (the filter during a backup).' },
    offset: size,
    length: size,
    pattern: { type: 'integer', minimum: 0, maximum: 255, description: 'Byte written, or expected on read.' },
    fails: { type: 'string', description: 'The request is expected to fail with this text (e.g. "Input/output error").' },
  },
};

const granules = {
  type: 'array',
  description: 'Exactly these dirty granules, as [first, end) pairs.',
  items: { type: 'array', items: { type: 'integer', minimum: 0 }, minItems: 2, maxItems: 2 },
};

/** Contents of an anonymous bitmap a job uses, which has no name to look it up by. */
const contents = (description: string) => ({
  type: 'object',
  additionalProperties: false,
  description,
  properties: { count: size, granules },
});

const bitmapExpectation = {
  type: 'object',
  required: ['node', 'name'],
  additionalProperties: false,
  properties: {
    node: { type: 'string' },
    name: { type: 'string' },
    count: size,
    granules,
    successor: contents('The anonymous successor (N) of a bitmap frozen by a job: it must have one, with these contents.'),
    recording: { type: 'boolean' },
    busy: { type: 'boolean' },
    persistent: { type: 'boolean' },
    inconsistent: { type: 'boolean' },
    absent: { type: 'boolean', description: 'The bitmap must not exist.' },
  },
};

const jobExpectation = {
  type: 'object',
  required: ['id'],
  additionalProperties: false,
  properties: {
    id: { type: 'string' },
    status: { type: 'string' },
    error: { type: 'string' },
    current: size,
    total: size,
    copy: contents("The job's copy bitmap (C, at the job cluster size), while its copy-before-write filter is in place."),
    absent: { type: 'boolean' },
  },
};

const step = {
  type: 'object',
  description:
    'One action (qmp, write, zero, discard, read, wait, advance, open or crash), optionally with expectations checked after it; or expectations alone; or narration alone.',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    narration,
    qmp: {
      type: 'object',
      required: ['execute'],
      additionalProperties: false,
      properties: { execute: { type: 'string' }, arguments: { type: 'object' } },
    },
    error: { type: 'string', description: 'The QMP command must fail with exactly this text.' },
    write: range,
    zero: range,
    discard: range,
    read: range,
    wait: {
      type: 'object',
      required: ['event'],
      additionalProperties: false,
      properties: { event: { type: 'string' }, data: { type: 'object' } },
      description: 'Until this event came (QEMU runs jobs in real time; the engine has already settled).',
    },
    advance: {
      type: 'object',
      additionalProperties: false,
      description:
        "Lets virtual time pass (between steps the engine's clock stands still, so a rate-limited job sleeps) one engine step at a time, until one goal holds: `frames`, a job's `status` or `progress`, an `event`, or a `bitmap` changing. Fails when the engine runs out of work first. On QEMU, which runs jobs in real time, `event` and `status` are waits for the event; the other goals exist only on the engine.",
      properties: {
        frames: { type: 'integer', minimum: 1, description: 'This many more timeline frames.' },
        job: { type: 'string', description: 'The job whose status or progress is the goal.' },
        status: {
          enum: ['created', 'running', 'paused', 'ready', 'standby', 'waiting', 'pending', 'aborting', 'concluded', 'undefined', 'null'],
          description: 'Until the job is in this state.',
        },
        progress: { ...size, description: 'Until the job has copied at least this many bytes (its current-progress).' },
        event: { type: 'string', description: 'Until this QMP event comes (one that came since the last wait counts).' },
        data: { type: 'object', description: "Members the event's data must have." },
        bitmap: {
          type: 'object',
          required: ['node', 'name'],
          additionalProperties: false,
          description: 'Until this bitmap changes: a granule set or cleared, a flag, or the bitmap made or released.',
          properties: { node: { type: 'string' }, name: { type: 'string' } },
        },
      },
      dependencies: { status: ['job'], progress: ['job'], data: ['event'] },
    },
    open: {
      type: 'string',
      description:
        'Opens a declared image again, with the blockdev-add it got at the start (fault included, counting afresh): after a blockdev-del or a crash.',
    },
    crash: {
      const: true,
      description:
        'QEMU dies (SIGKILL) and starts afresh with no nodes: nothing is flushed or stored, so persistent bitmaps stay in_use on disk. Reopen images with `open`. No job may exist at that point (dismiss finished ones first).',
    },
    expect: {
      type: 'object',
      description: "Checked after the step's action: bitmaps by node and name, jobs by id (one object or a list of them), and the step's events.",
      additionalProperties: false,
      properties: {
        bitmap: { oneOf: [bitmapExpectation, { type: 'array', items: bitmapExpectation }] },
        job: { oneOf: [jobExpectation, { type: 'array', items: jobExpectation }] },
        events: {
          type: 'array',
          description: "QMP events this step emits, in this order (others may come between): each an event name and members its data must have.",
          items: {
            type: 'object',
            required: ['event'],
            additionalProperties: false,
            properties: { event: { type: 'string' }, data: { type: 'object' } },
          },
        },
      },
    },
  },
};

const fault = {
  type: 'object',
  required: ['on', 'nth'],
  additionalProperties: false,
  properties: {
    on: { enum: ['read', 'write'], description: 'Which requests of the image are counted.' },
    nth: { type: 'integer', minimum: 1, description: 'The request that fails (1 = the first).' },
    errno: { type: 'integer', minimum: 1, description: 'Default 5 (EIO); 28 is ENOSPC.' },
  },
};

const image = {
  type: 'object',
  required: ['name', 'format', 'size'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', pattern: '^[A-Za-z][A-Za-z0-9._-]{0,30}$', description: 'Node name and file name stem.' },
    format: { enum: ['raw', 'qcow2'] },
    size,
    clusterSize: size,
    backing: { type: 'string', description: 'Name of another image, the backing file (qcow2).' },
    data: {
      type: 'array',
      description: 'Guest writes made before the steps, through qemu-io.',
      items: {
        type: 'object',
        required: ['offset', 'length'],
        additionalProperties: false,
        properties: { offset: size, length: size, pattern: { type: 'integer', minimum: 0, maximum: 255 } },
      },
    },
    faults: { type: 'array', items: fault, maxItems: 1 },
  },
};

export const SCENARIO_SCHEMA = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://bitmap-lab.dev/schema/bitmaplab.schema.json',
  title: 'Bitmap Lab scenario',
  type: 'object',
  required: ['title', 'images', 'steps'],
  additionalProperties: false,
  properties: {
    $schema: { type: 'string' },
    title: { type: 'string' },
    description: narration,
    images: { type: 'array', items: image, minItems: 1 },
    steps: { type: 'array', items: step, minItems: 1 },
  },
} as const;

/**
 * The messages between the extension host and the playground webview. Both
 * sides import this module and neither trusts the other: each direction has a
 * parser that rebuilds the message from known fields, or says what is wrong.
 * No imports, so the webview bundle stays free of engine and Node code.
 */

export const PROTOCOL_VERSION = 1;

/**
 * At most this many dirty ranges per bitmap in one snapshot. A bitmap of up to
 * 4096 granules (the webview's cell view) has at most 2048, so only density
 * strips of huge, fragmented bitmaps are ever cut short.
 */
export const MAX_EXTENTS_PER_BITMAP = 8192;

/** Dirty bytes [start, end), as DirtyBitmap.dirtyExtents() yields them. */
export type Extent = [start: number, end: number];

export interface BitmapView {
  name?: string;
  /** Bytes the bitmap covers: its node's length when it was made, which the node may since have outgrown. */
  size: number;
  granularity: number;
  /** Dirty bytes: dirty granules times the granularity, as QEMU counts. */
  count: number;
  recording: boolean;
  busy: boolean;
  persistent: boolean;
  inconsistent: boolean;
  /** Sorted and disjoint; the first MAX_EXTENTS_PER_BITMAP only. */
  extents: Extent[];
  /** The extents stop early: nothing past the last one is known. */
  truncated?: true;
}

export interface NodeView {
  nodeName: string;
  driver: string;
  length: number;
  bitmaps: BitmapView[];
}

export interface SnapshotMessage {
  type: 'snapshot';
  version: typeof PROTOCOL_VERSION;
  nodes: NodeView[];
}

export type ToWebviewMessage = SnapshotMessage;

/** The webview has loaded (first time, after a reload, or shown again) and wants a snapshot. */
export interface ReadyMessage {
  type: 'ready';
  version: typeof PROTOCOL_VERSION;
}

export type FromWebviewMessage = ReadyMessage;

/** A parsed message, or where and why it was refused. */
export type Parsed<T> = { message: T } | { error: string };

export function parseFromWebview(data: unknown): Parsed<FromWebviewMessage> {
  return parse(data, (message) => {
    if (message.type !== 'ready') fail('type', `unknown message type ${describe(message.type)}`);
    return { type: 'ready', version: PROTOCOL_VERSION };
  });
}

export function parseToWebview(data: unknown): Parsed<ToWebviewMessage> {
  return parse(data, (message) => {
    if (message.type !== 'snapshot') fail('type', `unknown message type ${describe(message.type)}`);
    return { type: 'snapshot', version: PROTOCOL_VERSION, nodes: array(message.nodes, 'nodes').map(node) };
  });
}

class Invalid extends Error {}

function fail(path: string, what: string): never {
  throw new Invalid(`${path}: ${what}`);
}

function parse<T>(data: unknown, build: (message: Record<string, unknown>) => T): Parsed<T> {
  try {
    const message = object(data, 'message');
    if (message.version !== PROTOCOL_VERSION) {
      fail('version', `expected ${PROTOCOL_VERSION}, got ${describe(message.version)}`);
    }
    return { message: build(message) };
  } catch (error) {
    if (error instanceof Invalid) return { error: error.message };
    throw error;
  }
}

const describe = (value: unknown) => (typeof value === 'string' ? JSON.stringify(value) : String(value));

function object(value: unknown, path: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(path, 'not an object');
  return value as Record<string, unknown>;
}

function array(value: unknown, path: string): unknown[] {
  if (!Array.isArray(value)) fail(path, 'not an array');
  return value;
}

function string(value: unknown, path: string): string {
  if (typeof value !== 'string') fail(path, 'not a string');
  return value;
}

function boolean(value: unknown, path: string): boolean {
  if (typeof value !== 'boolean') fail(path, 'not a boolean');
  return value;
}

function byteCount(value: unknown, path: string): number {
  if (!Number.isSafeInteger(value) || (value as number) < 0) fail(path, 'not a byte count');
  return value as number;
}

function node(value: unknown, index: number): NodeView {
  const path = `nodes[${index}]`;
  const fields = object(value, path);
  return {
    nodeName: string(fields.nodeName, `${path}.nodeName`),
    driver: string(fields.driver, `${path}.driver`),
    length: byteCount(fields.length, `${path}.length`),
    bitmaps: array(fields.bitmaps, `${path}.bitmaps`).map((bitmap, i) => bitmapView(bitmap, `${path}.bitmaps[${i}]`)),
  };
}

function bitmapView(value: unknown, path: string): BitmapView {
  const fields = object(value, path);
  const size = byteCount(fields.size, `${path}.size`);
  const granularity = byteCount(fields.granularity, `${path}.granularity`);
  if (granularity === 0) fail(`${path}.granularity`, 'is zero');
  const truncated = fields.truncated === undefined ? false : boolean(fields.truncated, `${path}.truncated`);
  return {
    ...(fields.name !== undefined && { name: string(fields.name, `${path}.name`) }),
    size,
    granularity,
    count: byteCount(fields.count, `${path}.count`),
    recording: boolean(fields.recording, `${path}.recording`),
    busy: boolean(fields.busy, `${path}.busy`),
    persistent: boolean(fields.persistent, `${path}.persistent`),
    inconsistent: boolean(fields.inconsistent, `${path}.inconsistent`),
    extents: extents(fields.extents, `${path}.extents`, size),
    ...(truncated && { truncated: true }),
  };
}

/** The renderers rely on extents being in order, disjoint and inside the bitmap. */
function extents(value: unknown, path: string, size: number): Extent[] {
  const list = array(value, path);
  if (list.length > MAX_EXTENTS_PER_BITMAP) fail(path, `more than ${MAX_EXTENTS_PER_BITMAP} extents`);
  let previousEnd = 0;
  return list.map((item, i) => {
    const pair = array(item, `${path}[${i}]`);
    const start = byteCount(pair[0], `${path}[${i}][0]`);
    const end = byteCount(pair[1], `${path}[${i}][1]`);
    if (pair.length !== 2 || start < previousEnd || end <= start || end > size) {
      fail(`${path}[${i}]`, 'not an ordered, disjoint, non-empty range inside the bitmap');
    }
    previousEnd = end;
    return [start, end];
  });
}

/** Player panel, host → webview: show frame `index` of run `run`. */
export interface PlayerSeekMessage {
  type: 'seek';
  version: typeof PROTOCOL_VERSION;
  run: number;
  index: number;
}

/**
 * Player panel, webview → host: the frame now shown, and who moved it there:
 * the user in the page (the host follows), or the host's seek or first draw
 * (an acknowledgement: following it would echo a frame the host has left).
 */
export interface PlayerFrameMessage {
  type: 'frame';
  version: typeof PROTOCOL_VERSION;
  run: number;
  index: number;
  by: 'user' | 'host';
}

function parseFrameRef<T extends 'seek' | 'frame'>(type: T, data: unknown): Parsed<{ type: T; version: typeof PROTOCOL_VERSION; run: number; index: number }> {
  const value = data as Record<string, unknown> | null;
  if (typeof value !== 'object' || value === null || value.type !== type) return { error: `not a ${type} message` };
  if (value.version !== PROTOCOL_VERSION) return { error: `${type}: version ${String(value.version)}, expected ${PROTOCOL_VERSION}` };
  const { run, index } = value;
  if (!Number.isSafeInteger(run) || (run as number) < 0 || !Number.isSafeInteger(index) || (index as number) < 0) {
    return { error: `${type}: run and index must be non-negative integers` };
  }
  return { message: { type, version: PROTOCOL_VERSION, run: run as number, index: index as number } };
}

export const parsePlayerSeek = (data: unknown): Parsed<PlayerSeekMessage> => parseFrameRef('seek', data);
export function parsePlayerFrame(data: unknown): Parsed<PlayerFrameMessage> {
  const parsed = parseFrameRef('frame', data);
  if ('error' in parsed) return parsed;
  const by = (data as Record<string, unknown>).by;
  if (by !== 'user' && by !== 'host') return { error: `frame: by must be "user" or "host", not ${JSON.stringify(by)}` };
  return { message: { ...parsed.message, by } };
}

/** The lanes whose colour a setting may choose (bitmapLab.laneColours.*). */
export const LANE_COLOUR_KEYS = ['source', 'bitmap', 'syncBitmap', 'successor', 'copyBitmap', 'copyBeforeWrite', 'target'] as const;
export type LaneColourKey = (typeof LANE_COLOUR_KEYS)[number];
/** Only the lanes a setting colours; the others keep the theme's colour. */
export type LaneColours = Partial<Record<LaneColourKey, string>>;

const HEX_COLOUR = /^#(?:[\da-f]{3,4}|[\da-f]{6}|[\da-f]{8})$/i;
const NUMBER = String.raw`[+-]?(?:\d+\.?\d*|\.\d+)(?:deg|turn|rad|%)?`;
const FUNCTION_COLOUR = new RegExp(String.raw`^(?:rgba?|hsla?)\(\s*${NUMBER}(?:\s*[,\s/]\s*${NUMBER}){2,3}\s*\)$`, 'i');
const NAMED_COLOURS = new Set(
  (
    'transparent aliceblue antiquewhite aqua aquamarine azure beige bisque black blanchedalmond blue blueviolet brown burlywood cadetblue ' +
    'chartreuse chocolate coral cornflowerblue cornsilk crimson cyan darkblue darkcyan darkgoldenrod darkgray darkgreen darkgrey darkkhaki ' +
    'darkmagenta darkolivegreen darkorange darkorchid darkred darksalmon darkseagreen darkslateblue darkslategray darkslategrey darkturquoise ' +
    'darkviolet deeppink deepskyblue dimgray dimgrey dodgerblue firebrick floralwhite forestgreen fuchsia gainsboro ghostwhite gold goldenrod ' +
    'gray green greenyellow grey honeydew hotpink indianred indigo ivory khaki lavender lavenderblush lawngreen lemonchiffon lightblue ' +
    'lightcoral lightcyan lightgoldenrodyellow lightgray lightgreen lightgrey lightpink lightsalmon lightseagreen lightskyblue lightslategray ' +
    'lightslategrey lightsteelblue lightyellow lime limegreen linen magenta maroon mediumaquamarine mediumblue mediumorchid mediumpurple ' +
    'mediumseagreen mediumslateblue mediumspringgreen mediumturquoise mediumvioletred midnightblue mintcream mistyrose moccasin navajowhite ' +
    'navy oldlace olive olivedrab orange orangered orchid palegoldenrod palegreen paleturquoise palevioletred papayawhip peachpuff peru pink ' +
    'plum powderblue purple rebeccapurple red rosybrown royalblue saddlebrown salmon sandybrown seagreen seashell sienna silver skyblue ' +
    'slateblue slategray slategrey snow springgreen steelblue tan teal thistle tomato turquoise violet wheat white whitesmoke yellow yellowgreen'
  ).split(' '),
);

/**
 * A colour as CSS writes it: hex, rgb()/hsl() of plain numbers, or a colour
 * keyword. Nothing else is accepted, so a setting cannot carry `;`, `}`,
 * url() or var() into the page's styles.
 */
export const isCssColour = (value: string) => HEX_COLOUR.test(value) || FUNCTION_COLOUR.test(value) || NAMED_COLOURS.has(value.toLowerCase());

/** Player panel, host → webview: the lane colours the settings choose, in full (a lane left out goes back to the theme's). */
export interface PlayerColoursMessage {
  type: 'colours';
  version: typeof PROTOCOL_VERSION;
  colours: LaneColours;
}

/** The colours, or what is wrong with them: an unknown lane, or a value that is not a colour. */
function laneColours(value: unknown, path: string): LaneColours {
  const fields = object(value, path);
  const colours: LaneColours = {};
  for (const [key, colour] of Object.entries(fields)) {
    if (!(LANE_COLOUR_KEYS as readonly string[]).includes(key)) fail(`${path}.${key}`, 'not a lane');
    if (typeof colour !== 'string' || !isCssColour(colour.trim())) fail(`${path}.${key}`, `${describe(colour)} is not a CSS colour`);
    colours[key as LaneColourKey] = colour.trim();
  }
  return colours;
}

export const parsePlayerColours = (data: unknown): Parsed<PlayerColoursMessage> =>
  parse(data, (message) => {
    if (message.type !== 'colours') fail('type', 'not a colours message');
    return { type: 'colours', version: PROTOCOL_VERSION, colours: laneColours(message.colours, 'colours') };
  });

/** Whatever the host sends the player panel. */
export function parseToPlayer(data: unknown): Parsed<PlayerSeekMessage | PlayerColoursMessage> {
  const type = (data as { type?: unknown } | null)?.type;
  return type === 'colours' ? parsePlayerColours(data) : parsePlayerSeek(data);
}

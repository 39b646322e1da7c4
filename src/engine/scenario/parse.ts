/**
 * Reading a scenario file: JSON syntax, then the schema, each error naming
 * the JSON path and the line where it is and saying what was expected.
 */
import Ajv, { type ErrorObject } from 'ajv';
import { findNodeAtLocation, parseTree, printParseErrorCode, type ParseError } from 'jsonc-parser';
import { parseSize } from '../qemu-io';
import { SCENARIO_SCHEMA, SIZE_SCHEMA } from './schema';

export type Size = number | string;

export function bytes(size: Size): number {
  const value = typeof size === 'number' ? size : parseSize(size);
  if (value === undefined) throw new Error(`not a size: ${size}`);
  return value;
}

export interface ImageSpec {
  name: string;
  format: 'raw' | 'qcow2';
  size: Size;
  clusterSize?: Size;
  backing?: string;
  data?: Array<{ offset: Size; length: Size; pattern?: number }>;
  faults?: Array<{ on: 'read' | 'write'; nth: number; errno?: number }>;
}

export interface RangeSpec {
  node: string;
  offset: Size;
  length: Size;
  pattern?: number;
  fails?: string;
}

/** Contents of a bitmap: its count in bytes, its dirty granules as [first, end) runs. */
export interface BitsExpectation {
  count?: Size;
  granules?: Array<[number, number]>;
}

export interface BitmapExpectation extends BitsExpectation {
  node: string;
  name: string;
  /** The successor (N) of a frozen bitmap. */
  successor?: BitsExpectation;
  recording?: boolean;
  busy?: boolean;
  persistent?: boolean;
  inconsistent?: boolean;
  absent?: boolean;
}

export interface JobExpectation {
  id: string;
  status?: string;
  error?: string;
  current?: Size;
  total?: Size;
  /** The copy bitmap (C). */
  copy?: BitsExpectation;
  absent?: boolean;
}

/** Lets the engine run until one of these: a number of frames, a job's status or progress, an event, a bitmap's change. */
export interface AdvanceSpec {
  frames?: number;
  job?: string;
  status?: string;
  progress?: Size;
  event?: string;
  data?: Record<string, unknown>;
  bitmap?: { node: string; name: string };
}

/** The members of `advance` that say how far; a step names exactly one. */
export const ADVANCE_GOALS = ['frames', 'status', 'progress', 'event', 'bitmap'] as const;

/** A QMP event the step must emit: its name, and members its data must have. */
export interface EventExpectation {
  event: string;
  data?: Record<string, unknown>;
}

export interface StepSpec {
  narration?: string;
  qmp?: { execute: string; arguments?: Record<string, unknown> };
  error?: string;
  write?: RangeSpec;
  zero?: RangeSpec;
  discard?: RangeSpec;
  read?: RangeSpec;
  wait?: { event: string; data?: Record<string, unknown> };
  advance?: AdvanceSpec;
  /** An image of the scenario, opened again as at the start. */
  open?: string;
  /** QEMU killed and restarted with no nodes. */
  crash?: true;
  expect?: { bitmap?: BitmapExpectation | BitmapExpectation[]; job?: JobExpectation | JobExpectation[]; events?: EventExpectation[] };
}

export interface Scenario {
  title: string;
  description?: string;
  images: ImageSpec[];
  steps: StepSpec[];
}

export interface ScenarioError {
  /** JSON path, e.g. `steps[3].write.offset`. */
  path: string;
  line: number;
  column: number;
  message: string;
}

export class ScenarioSyntaxError extends Error {
  constructor(readonly file: string, readonly errors: ScenarioError[]) {
    super(errors.map((error) => `${file}:${error.line}:${error.column}: ${error.path || '(top)'}: ${error.message}`).join('\n'));
  }
}

const ajv = new Ajv({ allErrors: true, strict: false, verbose: true });
const validate = ajv.compile(SCENARIO_SCHEMA);

/** 1-based line and column of an offset in `text`. */
function position(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return { line, column: offset - before.lastIndexOf('\n') };
}

function jsonPath(segments: Array<string | number>): string {
  return segments.map((s, i) => (typeof s === 'number' ? `[${s}]` : i === 0 ? s : `.${s}`)).join('');
}

/** A readable message for one schema error. */
function describe(error: ErrorObject): string {
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'additionalProperties':
      return `unexpected member '${params.additionalProperty}'`;
    case 'required':
      return `missing member '${params.missingProperty}'`;
    case 'enum':
      return `must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'oneOf':
      return error.parentSchema === SIZE_SCHEMA
        ? 'must be a byte count: a number, or a string such as "64k" or "1M"'
        : 'must be one of the allowed forms';
    default:
      return error.message ?? error.keyword;
  }
}

/**
 * Of the errors ajv gives for one place, keep those that say the most. A byte
 * count that fits neither of its forms says so in one message; an expectation
 * that may be one object or a list of them is told by the errors of the form
 * it was written in (a list, or else an object).
 */
function relevant(errors: ErrorObject[]): ErrorObject[] {
  const oneOfs = errors.filter((e) => e.keyword === 'oneOf');
  const isSize = (e: ErrorObject) => e.parentSchema === SIZE_SCHEMA;
  const branch = (o: ErrorObject) => `${o.schemaPath}/${!isSize(o) && Array.isArray(o.data) ? 1 : 0}/`;
  // Under `o` in the schema and in the document (schema paths are the same for every step).
  const under = (e: ErrorObject, o: ErrorObject, prefix = `${o.schemaPath}/`) =>
    e !== o && e.schemaPath.startsWith(prefix) && (e.instancePath === o.instancePath || e.instancePath.startsWith(`${o.instancePath}/`));
  return errors.filter((e) => {
    const within = oneOfs.filter((o) => under(e, o));
    if (within.some((o) => isSize(o) || !e.schemaPath.startsWith(branch(o)))) return false;
    return e.keyword !== 'oneOf' || isSize(e) || !errors.some((other) => under(other, e, branch(e)));
  });
}

export function parseScenario(text: string, file = 'scenario'): Scenario {
  const syntax: ParseError[] = [];
  const tree = parseTree(text, syntax, { allowTrailingComma: false, disallowComments: true });
  if (syntax.length || !tree) {
    throw new ScenarioSyntaxError(
      file,
      syntax.map((error) => ({ path: '', ...position(text, error.offset), message: `JSON syntax: ${printParseErrorCode(error.error)}` })),
    );
  }
  const value: unknown = JSON.parse(text);
  const at = (segments: Array<string | number>, message: string): ScenarioError => {
    const node = findNodeAtLocation(tree, segments);
    return { path: jsonPath(segments), ...position(text, node?.offset ?? 0), message };
  };
  if (validate(value)) {
    const scenario = value as unknown as Scenario;
    const errors = [...imageReferences(scenario), ...advanceGoals(scenario)].map(([segments, message]) => at(segments, message));
    if (errors.length) throw new ScenarioSyntaxError(file, errors);
    return scenario;
  }
  const errors = relevant(validate.errors ?? []).map((error) => {
    const segments = error.instancePath
      .split('/')
      .slice(1)
      .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
      .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
    return at(segments, describe(error));
  });
  throw new ScenarioSyntaxError(file, errors);
}

/** Names of images used before they are declared (backing) or not declared at all (open). */
function imageReferences(scenario: Scenario): Array<[Array<string | number>, string]> {
  const names = scenario.images.map((image) => image.name);
  const problems: Array<[Array<string | number>, string]> = [];
  scenario.images.forEach((image, i) => {
    if (image.backing !== undefined && !names.slice(0, i).includes(image.backing)) {
      problems.push([['images', i, 'backing'], `must name an image declared before this one (${names.slice(0, i).join(', ') || 'none is'})`]);
    }
  });
  scenario.steps.forEach((step, i) => {
    if (step.open !== undefined && !names.includes(step.open)) {
      problems.push([['steps', i, 'open'], `must name an image of this scenario: ${names.join(', ')}`]);
    }
  });
  return problems;
}

/** An `advance` that names no goal or several: the schema allows each member alone. */
function advanceGoals(scenario: Scenario): Array<[Array<string | number>, string]> {
  const problems: Array<[Array<string | number>, string]> = [];
  scenario.steps.forEach((step, i) => {
    if (!step.advance) return;
    const goals = ADVANCE_GOALS.filter((goal) => step.advance![goal] !== undefined);
    if (goals.length !== 1) {
      const got = goals.length ? `, not ${goals.join(' and ')}` : '';
      problems.push([['steps', i, 'advance'], `must name exactly one of ${ADVANCE_GOALS.join(', ')}${got}`]);
    }
  });
  return problems;
}

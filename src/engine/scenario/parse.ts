/**
 * Reading a scenario file: JSON syntax, then the schema, each error naming
 * the JSON path and the line where it is and saying what was expected.
 */
import Ajv, { type ErrorObject } from 'ajv';
import { findNodeAtLocation, parseTree, printParseErrorCode, type ParseError } from 'jsonc-parser';
import { SCENARIO_SCHEMA } from './schema';

export type Size = number | string;

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

export interface BitmapExpectation {
  node: string;
  name: string;
  count?: Size;
  granules?: Array<[number, number]>;
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
  absent?: boolean;
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
  expect?: { bitmap?: BitmapExpectation | BitmapExpectation[]; job?: JobExpectation };
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

const ajv = new Ajv({ allErrors: true, strict: false });
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
      return 'must be a byte count: a number, or a string such as "64k" or "1M"';
    default:
      return error.message ?? error.keyword;
  }
}

/**
 * Of the errors ajv gives for one place, keep those that say the most: a
 * failed `oneOf` reports its branches' errors too, which only confuse.
 */
function relevant(errors: ErrorObject[]): ErrorObject[] {
  const oneOfPaths = new Set(errors.filter((e) => e.keyword === 'oneOf').map((e) => e.instancePath));
  return errors.filter((e) => e.keyword === 'oneOf' || ![...oneOfPaths].some((path) => e.instancePath.startsWith(path)));
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
  if (validate(value)) return value as unknown as Scenario;
  const errors = relevant(validate.errors ?? []).map((error) => {
    const segments = error.instancePath
      .split('/')
      .slice(1)
      .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
      .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
    const node = findNodeAtLocation(tree, segments);
    return { path: jsonPath(segments), ...position(text, node?.offset ?? 0), message: describe(error) };
  });
  throw new ScenarioSyntaxError(file, errors);
}

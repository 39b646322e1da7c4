import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SCENARIO_SCHEMA } from '../../src/engine/scenario/schema';

test('schema/bitmaplab.schema.json, which editors validate scenario files with, is the schema the runner uses', () => {
  const file = path.join(__dirname, '..', '..', '..', 'schema', 'bitmaplab.schema.json');
  assert.deepEqual(JSON.parse(fs.readFileSync(file, 'utf8')), JSON.parse(JSON.stringify(SCENARIO_SCHEMA)), 'run `npm run schema` to update it');
});

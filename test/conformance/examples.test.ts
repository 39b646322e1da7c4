/**
 * Every example scenario: green on the engine (its expectations hold) and the
 * same on real QEMU 7.2 (replies, events, node records and bitmaps after each
 * step, on image files our engine created).
 */
import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseScenario } from '../../src/engine/scenario/parse';
import { createImages, runScenario } from '../../src/engine/scenario/runner';
import { QemuProcess } from '../support/qemu';
import { skipWithout } from '../support/tools';
import { onEndpoint, onEngine, onQemu } from '../support/differential';
import { scenarioSteps } from '../support/scenario-steps';

const EXAMPLES = path.join(__dirname, '..', '..', '..', 'examples');
const files = fs.readdirSync(EXAMPLES).filter((file) => file.endsWith('.bitmaplab.json')).sort();
const skip = skipWithout(QemuProcess.binary() !== undefined, 'QEMU (qemu-system-x86_64)');

describe('example scenarios', () => {
  for (const file of files) {
    const scenario = parseScenario(fs.readFileSync(path.join(EXAMPLES, file), 'utf8'), file);
    test(`${file}: expectations hold on the engine`, () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bitmap-lab-example-'));
      try {
        assert.deepEqual(runScenario(scenario, dir).failures, []);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
    test(`${file}: the same on QEMU 7.2`, { skip }, async () => {
      const steps = scenarioSteps(scenario);
      const setup = (dir: string) => createImages(scenario.images, dir);
      const ours = await onEngine(steps, setup);
      const theirs = await onQemu(steps, setup, ours);
      for (let i = 0; i < steps.length; i++) assert.deepEqual(ours[i], theirs[i], `step ${i}: ${theirs[i].step}`);
    });
    test(`${file}: the same through the QMP endpoint (bitmap-lab qmp --socket)`, async () => {
      const steps = scenarioSteps(scenario);
      const setup = (dir: string) => createImages(scenario.images, dir);
      const ours = await onEngine(steps, setup);
      const wire = await onEndpoint(steps, setup, ours);
      for (let i = 0; i < steps.length; i++) assert.deepEqual(wire[i], ours[i], `step ${i}: ${ours[i].step}`);
    });
  }
});

/**
 * `npm run conformance -- --seeds N [--from S] [--jobs J]`: runs the random
 * scenarios of seeds S..S+N-1 on real QEMU 7.2 and on our engine
 * (test/support/generator.ts), prints each divergence shrunk to a minimal
 * reproducer, and ends with one summary line. Exits 1 on any divergence.
 *
 * `npm run conformance -- --scenario FILE...`: runs scenario files on both
 * instead, to check that a scenario says what QEMU does.
 */
import * as fs from 'node:fs';
import { parseScenario } from '../src/engine/scenario/parse';
import { createImages } from '../src/engine/scenario/runner';
import { agree, compare, describeDifference, describeDivergence, describeSteps, generate, shrink } from './support/generator';
import { scenarioSteps } from './support/scenario-steps';

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  if (at < 0) return fallback;
  const value = Number(process.argv[at + 1]);
  if (!Number.isInteger(value) || value < 0) {
    console.error(`conformance: --${name} takes a whole number`);
    process.exit(2);
  }
  return value;
}

/** Each file after --scenario, on QEMU and on the engine; 1 when any differs. */
async function scenarios(files: string[]): Promise<number> {
  let diverged = 0;
  let unchecked = 0;
  for (const file of files) {
    let steps: ReturnType<typeof scenarioSteps>;
    let scenario: ReturnType<typeof parseScenario>;
    try {
      scenario = parseScenario(fs.readFileSync(file, 'utf8'), file);
      steps = scenarioSteps(scenario);
    } catch (error) {
      unchecked++;
      console.log(`${file}: not checked: ${(error as Error).message}`);
      continue;
    }
    const images = scenario.images;
    const outcome = await compare(steps, (dir) => createImages(images, dir));
    if (agree(outcome)) {
      console.log(`${file}: ${steps.length} steps, the same on QEMU`);
      continue;
    }
    diverged++;
    console.log(`${file} diverges:\n${describeSteps(steps)}\n${describeDifference(outcome)}`);
  }
  console.log(`conformance: ${files.length} scenarios, ${diverged} divergences, ${unchecked} not checked`);
  return diverged || unchecked ? 1 : 0;
}

async function main(): Promise<number> {
  const at = process.argv.indexOf('--scenario');
  if (at >= 0) return scenarios(process.argv.slice(at + 1));
  const seeds = option('seeds', 20);
  const from = option('from', 1);
  const parallel = Math.max(1, option('jobs', 2));
  const verbose = process.argv.includes('--verbose');
  let next = from;
  let compared = 0;
  let done = 0;
  const diverged: number[] = [];
  const worker = async () => {
    while (next < from + seeds) {
      const seed = next++;
      const scenario = generate(seed);
      const outcome = await compare(scenario.steps, scenario.setup);
      compared += outcome.compared;
      done++;
      if (outcome.error?.startsWith('engine:')) {
        // The engine threw: a generator bug or an engine bug, reported as a divergence all the same.
        diverged.push(seed);
        console.log(`\n=== seed ${seed}: the engine failed ===\n${describeDivergence(seed, scenario.files, scenario.steps, outcome)}`);
        continue;
      }
      if (agree(outcome)) {
        if (verbose) console.log(`seed ${seed}: ${scenario.steps.length} steps agree`);
        else if (done % 50 === 0) console.error(`conformance: ${done}/${seeds} seeds run`);
        continue;
      }
      diverged.push(seed);
      // Printed before shrinking: a difference that does not come again is still on record.
      console.log(`\n=== seed ${seed} diverges (${scenario.steps.length} steps) ===\n${describeDifference(outcome)}\n--- shrinking`);
      const shrunk = await shrink(scenario.steps, scenario.setup, verbose ? (line) => console.log(line) : undefined);
      console.log(describeDivergence(seed, scenario.files, shrunk.steps, shrunk.outcome));
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  const list = diverged.length ? ` (seeds ${diverged.sort((a, b) => a - b).join(', ')})` : '';
  console.log(`conformance: ${seeds} seeds, ${compared} steps compared, ${diverged.length} divergences${list}`);
  return diverged.length ? 1 : 0;
}

main().then(
  (status) => process.exit(status),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);

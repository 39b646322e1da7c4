/**
 * `npm run conformance -- --seeds N [--from S] [--jobs J]`: runs the random
 * scenarios of seeds S..S+N-1 on real QEMU 7.2 and on our engine
 * (test/support/generator.ts), prints each divergence shrunk to a minimal
 * reproducer, and ends with one summary line. Exits 1 on any divergence.
 */
import { compare, describeDivergence, generate, shrink } from './support/generator';

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

async function main(): Promise<number> {
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
      if (outcome.differs < 0 && !outcome.error) {
        if (verbose) console.log(`seed ${seed}: ${scenario.steps.length} steps agree`);
        else if (done % 50 === 0) console.error(`conformance: ${done}/${seeds} seeds run`);
        continue;
      }
      diverged.push(seed);
      console.log(`\n=== seed ${seed} diverges (${scenario.steps.length} steps); shrinking ===`);
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

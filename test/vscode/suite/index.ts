// Entry point that VS Code's extension host loads through --extensionTestsPath.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import Mocha from 'mocha';

export async function run(): Promise<void> {
  // No colours: the output reaches the terminal through the workbench's console, not a TTY.
  const mocha = new Mocha({ ui: 'tdd', color: false, timeout: 20_000 });
  // *.spec.js, not *.test.js: scripts/run-tests.mjs hands every *.test.js to node --test,
  // where `vscode` cannot be loaded.
  for (const file of readdirSync(__dirname).filter((name) => name.endsWith('.spec.js')).sort()) {
    mocha.addFile(join(__dirname, file));
  }
  const runner = await new Promise<Mocha.Runner>((resolve) => {
    const started = mocha.run(() => resolve(started));
  });
  const { passes = 0, failures = 0 } = runner.stats ?? {};
  // A plain closing line that CI reads as this suite's count.
  console.log(`vscode: ${passes} passed, ${failures} failed`);
  if (failures > 0) throw new Error(`${failures} of ${passes + failures} extension tests failed`);
  if (passes === 0) throw new Error('no extension tests ran');
}

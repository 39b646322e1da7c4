// Runs every benchmark compiled to out/bench, one after another.
import { readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

let status = 0;
for (const file of readdirSync('out/bench').filter((name) => name.endsWith('.js')).sort()) {
  console.log(`\n== bench/${file.replace(/\.js$/, '')}`);
  status ||= spawnSync(process.execPath, [`out/bench/${file}`], { stdio: 'inherit' }).status ?? 1;
}
process.exit(status);

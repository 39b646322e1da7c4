/**
 * Entry point of the player bundle (dist/player.js): reads the recorded runs
 * that the page carries as JSON and mounts the player. Built as an IIFE so an
 * exported page can inline it under a hash-pinned CSP.
 */
import { Player } from './player';
import { unpackRuns } from './runs-format';

const root = document.getElementById('player') as HTMLElement;
const data = document.getElementById('bitmap-lab-runs')?.textContent ?? '';
let runs: ReturnType<typeof unpackRuns>;
try {
  runs = unpackRuns(JSON.parse(data));
} catch (error) {
  runs = { error: `the page's recording is not JSON (${(error as Error).message})` };
}
if ('error' in runs) {
  root.textContent = `Bitmap Lab cannot show this page: ${runs.error}.`;
  console.error(`Bitmap Lab: ${runs.error}`);
} else {
  new Player(root, runs, root.dataset.title ?? 'recorded runs');
}

/**
 * Entry point of the player bundle (dist/player.js): reads the recorded runs
 * that the page carries as JSON and mounts the player. Built as an IIFE so an
 * exported page can inline it under a hash-pinned CSP.
 */
import { PROTOCOL_VERSION, parsePlayerColours, parseToPlayer, type PlayerFrameMessage } from '../../src/protocol';
import { applyLaneColours } from './lane-colours';
import { Player } from './player';
import { unpackRuns } from './runs-format';

declare function acquireVsCodeApi(): { postMessage(message: unknown): void; setState(state: unknown): void };

function jsonOrNull(text: string | undefined): unknown {
  try {
    return JSON.parse(text ?? 'null');
  } catch {
    return null;
  }
}

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
} else if (typeof acquireVsCodeApi === 'function') {
  // In a VS Code panel: the host follows the frame shown, may ask for another,
  // sends the lane colours of the settings (first in the page, then as they
  // change), and reopens the scenario at the kept frame after a reload.
  const vscode = acquireVsCodeApi();
  const scenario = root.dataset.scenario;
  const initial = parsePlayerColours(jsonOrNull(root.dataset.colours));
  if ('error' in initial) console.warn(`Bitmap Lab: ignored the page's lane colours: ${initial.error}`);
  else applyLaneColours(initial.message.colours);
  // What a reload gives back to the host: the scenario, the frame shown and the one pinned.
  const state: { scenario: string | undefined; frame: number; pin?: number } = { scenario, frame: 0 };
  const report = (run: number, index: number, by: PlayerFrameMessage['by']) => {
    const message: PlayerFrameMessage = { type: 'frame', version: PROTOCOL_VERSION, run, index, by };
    vscode.postMessage(message);
    if (run === 0) vscode.setState(Object.assign(state, { frame: index }));
  };
  const pinned = (run: number, pin: number | undefined) => {
    if (run !== 0) return;
    if (pin === undefined) delete state.pin;
    else state.pin = pin;
    vscode.setState(state);
  };
  // Frames the host asked for are reported as its, so it does not follow them back.
  let hostSeeking = false;
  const hostSeek = (run: number, index: number) => {
    hostSeeking = true;
    try {
      player.seekTo(run, index);
    } finally {
      hostSeeking = false;
    }
  };
  const player = new Player(root, runs, root.dataset.title ?? 'recorded runs', (run, index) => report(run, index, hostSeeking ? 'host' : 'user'), pinned);
  if (root.dataset.pin !== undefined) {
    player.pinAt(0, Number(root.dataset.pin));
    pinned(0, Number(root.dataset.pin));
  }
  hostSeek(0, Number(root.dataset.frame ?? 0));
  // The first frame is drawn without a seek: the host hears of it too.
  report(0, player.frameOf(0)!, 'host');
  window.addEventListener('message', (event: MessageEvent) => {
    const parsed = parseToPlayer(event.data);
    if ('error' in parsed) console.warn(`Bitmap Lab: ignored a message: ${parsed.error}`);
    else if (parsed.message.type === 'colours') applyLaneColours(parsed.message.colours);
    else hostSeek(parsed.message.run, parsed.message.index);
  });
} else {
  new Player(root, runs, root.dataset.title ?? 'recorded runs');
}

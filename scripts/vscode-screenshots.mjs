// The README's screenshots of the Bitmap Lab panel in VS Code (code-server in headless
// Chromium, see scripts/code-server.mjs): examples/always-failure.bitmaplab.json at the
// start of the job, at the failure (pinned there) and at the cleanup (compared with the
// failure), in Light Modern and Dark Modern, into docs/vscode-always-MOMENT-THEME.png;
// and the scenario debugger stopped before the step that lets the job run on, into
// docs/vscode-debugger-dark.png.
//
// Run: npm run build && node scripts/vscode-screenshots.mjs [panel|debugger] (both by default)
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium, missingPieces, startCodeServer, stop, workbenchUrl } from './code-server.mjs';

const project = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const THEMES = { light: 'Default Light Modern', dark: 'Default Dark Modern' };

const missing = missingPieces();
if (missing.length) {
  console.error(`vscode-screenshots: ${missing.join(', ')}; run .ci/install-vscode-host.sh`);
  process.exit(1);
}
const only = process.argv[2];
if (only !== 'debugger') for (const [name, theme] of Object.entries(THEMES)) await shoot(name, theme, run);
if (only !== 'panel') await shoot('dark', THEMES.dark, debuggerShot, { width: 1600, height: 900 });

async function shoot(name, theme, take, viewport = { width: 1280, height: 800 }) {
  const tmp = mkdtempSync(join(tmpdir(), 'bitmap-lab-shots-'));
  let server;
  let browser;
  try {
    let authority;
    ({ server, authority } = await startCodeServer(tmp, {
      settings: {
        'workbench.colorTheme': theme,
        'workbench.startupEditor': 'none',
        'workbench.tips.enabled': false,
        'workbench.secondarySideBar.defaultVisibility': 'hidden',
        'chat.disableAIFeatures': true,
        // Still pictures: no transition caught half way.
        'bitmapLab.reducedMotion': true,
      },
    }));
    browser = await launchChromium(tmp);
    const page = await browser.newPage({ viewport });
    await page.exposeFunction('codeAutomationLog', () => {});
    await page.exposeFunction('codeAutomationExit', () => {});
    await page.goto(workbenchUrl(authority, { folder: join(project, 'examples'), extensionDevelopmentPath: project }));
    await page.waitForSelector('.monaco-workbench', { timeout: 60_000 });
    await page.waitForTimeout(3000);
    await take(page, name);
  } finally {
    await stop(server, browser, tmp);
  }
}

/** Runs a command by its title from the command palette. */
async function palette(page, title) {
  await page.keyboard.press('F1');
  await page.waitForSelector('.quick-input-widget input', { state: 'visible' });
  await page.keyboard.type(title);
  await page.waitForTimeout(500);
  await page.keyboard.press('Enter');
}

async function openExample(page) {
  await page.keyboard.press('Control+P');
  await page.waitForSelector('.quick-input-widget input', { state: 'visible' });
  await page.keyboard.type('always-failure.bitmaplab.json');
  await page.waitForTimeout(800);
  await page.keyboard.press('Enter');
  await page.waitForTimeout(1000);
}

/** Debug Scenario, then Step Over to the step before block-job-set-speed: the editor, the Variables view and the panel. */
async function debuggerShot(page, theme) {
  await openExample(page);
  await palette(page, 'Bitmap Lab: Debug Scenario');
  await page.waitForSelector('.debug-toolbar', { state: 'visible', timeout: 30_000 });
  await panelFrame(page);
  for (let i = 0; i < 5; i++) {
    await palette(page, 'Debug: Step Over');
    await page.waitForTimeout(700);
  }
  await palette(page, 'View: Show Run and Debug');
  await page.waitForTimeout(1000);
  await page.locator('.debug-variables .monaco-list-row', { hasText: 'Bitmaps' }).click();
  await page.waitForTimeout(1500);
  await page.mouse.move(0, 500);
  await page.screenshot({ path: join(project, 'docs', `vscode-debugger-${theme}.png`) });
  console.log(`docs/vscode-debugger-${theme}.png`);
}

async function run(page, theme) {
  await palette(page, 'View: Close Primary Side Bar');
  await openExample(page);
  await palette(page, 'Bitmap Lab: Open Scenario');
  await panelFrame(page);
  // The scenario's tab closed, its empty group goes and the panel has the window; its page reloads, so it is looked for again.
  await page.locator('.tab', { hasText: 'always-failure.bitmaplab.json' }).click({ button: 'middle' });
  await page.waitForTimeout(1500);
  const panel = await panelFrame(page);
  const frameShown = () => panel.getAttribute('.scrubber', 'aria-valuenow').then(Number);
  const moveTo = async (title) => {
    const before = await frameShown();
    await palette(page, title);
    await panel.waitForFunction((from) => Number(document.querySelector('.scrubber')?.getAttribute('aria-valuenow')) !== from, before);
    await page.waitForTimeout(600);
  };
  const save = async (moment) => {
    // Nothing of ours focused: no focus ring, no tooltip; the page scrolled to the transport and the lanes.
    await page.mouse.move(0, 400);
    await panel.evaluate(() => document.querySelector('.toolbar')?.scrollIntoView());
    await page.screenshot({ path: join(project, 'docs', `vscode-always-${moment}-${theme}.png`) });
    console.log(`docs/vscode-always-${moment}-${theme}.png: frame ${await frameShown()}`);
  };

  await moveTo('Bitmap Lab: Next Event');
  await save('start');
  await moveTo('Bitmap Lab: Next Failure');
  await panel.click('button.pin');
  await save('failure');
  await moveTo('Bitmap Lab: Next Bitmap Cleanup Step');
  await moveTo('Bitmap Lab: Next Bitmap Cleanup Step');
  await save('cleanup');
}

/** The webview's inner frame, once the player has drawn in it. */
async function panelFrame(page) {
  for (let waited = 0; waited < 30_000; waited += 250) {
    for (const frame of page.frames()) {
      if (await frame.$('#player .run .lane').catch(() => null)) return frame;
    }
    await page.waitForTimeout(250);
  }
  throw new Error('the Bitmap Lab panel did not appear');
}

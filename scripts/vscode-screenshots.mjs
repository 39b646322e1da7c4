// The README's screenshots of the Bitmap Lab panel in VS Code (code-server in headless
// Chromium, see scripts/code-server.mjs): examples/always-failure.bitmaplab.json at the
// start of the job, at the failure (pinned there) and at the cleanup (compared with the
// failure), in Light Modern and Dark Modern, into docs/vscode-always-MOMENT-THEME.png.
//
// Run: npm run build && node scripts/vscode-screenshots.mjs
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
for (const [name, theme] of Object.entries(THEMES)) await shoot(name, theme);

async function shoot(name, theme) {
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
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.exposeFunction('codeAutomationLog', () => {});
    await page.exposeFunction('codeAutomationExit', () => {});
    await page.goto(workbenchUrl(authority, { folder: join(project, 'examples'), extensionDevelopmentPath: project }));
    await page.waitForSelector('.monaco-workbench', { timeout: 60_000 });
    await page.waitForTimeout(3000);
    await run(page, name);
  } finally {
    await stop(server, browser, tmp);
  }
}

async function run(page, theme) {
  const palette = async (title) => {
    await page.keyboard.press('F1');
    await page.waitForSelector('.quick-input-widget input', { state: 'visible' });
    await page.keyboard.type(title);
    await page.waitForTimeout(500);
    await page.keyboard.press('Enter');
  };
  await palette('View: Close Primary Side Bar');
  await page.keyboard.press('Control+P');
  await page.waitForSelector('.quick-input-widget input', { state: 'visible' });
  await page.keyboard.type('always-failure.bitmaplab.json');
  await page.waitForTimeout(800);
  await page.keyboard.press('Enter');
  await page.waitForTimeout(1000);
  await palette('Bitmap Lab: Open Scenario');
  await panelFrame(page);
  // The scenario's tab closed, its empty group goes and the panel has the window; its page reloads, so it is looked for again.
  await page.locator('.tab', { hasText: 'always-failure.bitmaplab.json' }).click({ button: 'middle' });
  await page.waitForTimeout(1500);
  const panel = await panelFrame(page);
  const frameShown = () => panel.getAttribute('.scrubber', 'aria-valuenow').then(Number);
  const moveTo = async (title) => {
    const before = await frameShown();
    await palette(title);
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

// Lane colour settings, in plain Node: what counts as a CSS colour, the host's reading of the settings, and the player's messages both ways.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { readLaneColours } from '../../src/extension/lane-colours';
import { isCssColour, parsePlayerColours, parsePlayerFrame, parseToPlayer, PROTOCOL_VERSION } from '../../src/protocol';

test('CSS colours: hex, rgb() and hsl() of plain numbers, colour names; nothing that could carry more CSS', () => {
  for (const colour of ['#abc', '#abcd', '#a1b2c3', '#a1b2c3d4', 'rgb(1, 2, 3)', 'rgba(1,2,3,0.5)', 'rgb(1 2 3 / 50%)', 'hsl(200deg, 50%, 40%)', 'hsla(.5turn 10% 20% / .3)', 'RebeccaPurple', 'transparent']) {
    assert.ok(isCssColour(colour), colour);
  }
  for (const colour of ['', '#ab', '#abcde', 'red;', 'red; } body { display: none', 'url(x)', 'var(--vscode-foreground)', 'rgb(1, 2)', 'rgb(1, 2, 3', 'calc(1)', 'blurple', 'rgb(1, 2, 3) red', 'expression(alert(1))']) {
    assert.ok(!isCssColour(colour), colour);
  }
});

test('the host keeps the colours of the settings that are colours, and words a warning for each that is not', () => {
  const settings: Record<string, unknown> = { copyBitmap: ' #ff8800 ', successor: '', syncBitmap: 'purple;}', target: 12, source: undefined, bitmap: 'hsl(1, 2%, 3%)' };
  assert.deepEqual(readLaneColours({ get: (key) => settings[key] }), {
    colours: { copyBitmap: '#ff8800', bitmap: 'hsl(1, 2%, 3%)' },
    warnings: [
      `bitmapLab.laneColours.syncBitmap: "purple;}" is not a CSS colour (#rrggbb, rgb(), hsl() or a colour name); the theme's colour is used.`,
      `bitmapLab.laneColours.target: 12 is not a CSS colour (#rrggbb, rgb(), hsl() or a colour name); the theme's colour is used.`,
    ],
  });
});

test('player messages are rebuilt from known fields or refused, in both directions', () => {
  const version = PROTOCOL_VERSION;
  assert.deepEqual(parseToPlayer({ type: 'colours', version, colours: { target: 'teal' }, extra: 1 }), { message: { type: 'colours', version, colours: { target: 'teal' } } });
  assert.deepEqual(parseToPlayer({ type: 'seek', version, run: 0, index: 3 }), { message: { type: 'seek', version, run: 0, index: 3 } });
  assert.deepEqual(parseToPlayer({ type: 'colours', version, colours: { copyBitmap: 'url(x)' } }), { error: 'colours.copyBitmap: "url(x)" is not a CSS colour' });
  assert.deepEqual(parseToPlayer({ type: 'colours', version, colours: { __proto__: null, shadow: '#000' } }), { error: 'colours.shadow: not a lane' });
  assert.deepEqual(parsePlayerColours({ type: 'colours', version, colours: [] }), { error: 'colours: not an object' });
  assert.deepEqual(parseToPlayer({ type: 'other', version }), { error: 'not a seek message' });
  assert.deepEqual(parsePlayerFrame({ type: 'frame', version, run: 0, index: -1 }), { error: 'frame: run and index must be non-negative integers' });
  assert.deepEqual(parsePlayerFrame({ type: 'frame', version, run: 0, index: 2, by: 'user' }), { message: { type: 'frame', version, run: 0, index: 2, by: 'user' } });
  assert.deepEqual(parsePlayerFrame({ type: 'frame', version, run: 0, index: 2 }), { error: 'frame: by must be "user" or "host", not undefined' });
});

/**
 * Lane colours chosen in VS Code's settings, as overrides of the stylesheet's
 * --lab-* variables on <html>. VS Code rewrites only the --vscode-* variables
 * there when the theme changes, so these stay; a lane without a setting goes
 * back to the theme's colour. The player redraws when <html>'s style changes.
 */
import type { LaneColourKey, LaneColours } from '../../src/protocol';

const VARIABLES: Record<LaneColourKey, string> = {
  source: '--lab-source',
  bitmap: '--lab-named',
  syncBitmap: '--lab-sync',
  successor: '--lab-successor',
  copyBitmap: '--lab-copy',
  copyBeforeWrite: '--lab-cbw',
  target: '--lab-target',
};

/** `colours` has passed the protocol's check; the browser's own is the last word on what it can paint. */
export function applyLaneColours(colours: LaneColours): void {
  const style = document.documentElement.style;
  for (const [key, variable] of Object.entries(VARIABLES) as Array<[LaneColourKey, string]>) {
    const colour = colours[key];
    const usable = colour !== undefined && CSS.supports('color', colour);
    if (colour !== undefined && !usable) console.warn(`Bitmap Lab: ignored the colour ${JSON.stringify(colour)} for ${key}`);
    if (usable) style.setProperty(variable, colour);
    else style.removeProperty(variable);
  }
}

/**
 * The bitmapLab.laneColours.* settings, checked before they reach the panel:
 * an empty setting means the theme's colour, anything that is not a CSS
 * colour is left out with a warning. No `vscode` import, so tests read it
 * from a plain object.
 */
import { isCssColour, LANE_COLOUR_KEYS, type LaneColours } from '../protocol';

export const LANE_COLOURS_SECTION = 'bitmapLab.laneColours';

export function readLaneColours(settings: { get(key: string): unknown }): { colours: LaneColours; warnings: string[] } {
  const colours: LaneColours = {};
  const warnings: string[] = [];
  for (const key of LANE_COLOUR_KEYS) {
    const value = settings.get(key);
    const colour = typeof value === 'string' ? value.trim() : value;
    if (colour === undefined || colour === null || colour === '') continue;
    if (typeof colour === 'string' && isCssColour(colour)) colours[key] = colour;
    else warnings.push(`${LANE_COLOURS_SECTION}.${key}: ${JSON.stringify(value)} is not a CSS colour (#rrggbb, rgb(), hsl() or a colour name); the theme's colour is used.`);
  }
  return { colours, warnings };
}

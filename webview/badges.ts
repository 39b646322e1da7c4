/** Bitmap flag badges, a word and a glyph each, shared by the playground and the player. */
import type { BaseType, Selection } from 'd3';

export interface Badge {
  flag: string;
  glyph: string;
  meaning: string;
}

/** Fills a lane's `.badges` list with one item per badge. */
export function drawBadges<Datum, Parent extends BaseType, ParentDatum>(
  list: Selection<BaseType, Datum, Parent, ParentDatum>,
  badges: Badge[],
): void {
  list
    .selectAll<HTMLLIElement, Badge>('li')
    .data(badges, (badge) => badge.flag)
    .join((enter) => {
      const item = enter.append('li');
      item.append('span').attr('class', 'glyph').attr('aria-hidden', 'true');
      item.append('span').attr('class', 'word');
      return item;
    })
    .attr('class', (badge) => `badge ${badge.flag}`)
    .attr('title', (badge) => badge.meaning)
    .call((item) => item.select('.glyph').text((badge) => badge.glyph))
    .call((item) => item.select('.word').text((badge) => badge.flag));
}

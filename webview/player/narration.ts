/**
 * The markdown subset narration is written in: paragraphs split by blank
 * lines, `code` and **bold**. Everything becomes text nodes, so no markup in
 * a scenario file can reach the page as HTML.
 */

const INLINE = /`([^`]+)`|\*\*([^*]+)\*\*/g;

function inline(text: string): Node[] {
  const nodes: Node[] = [];
  let at = 0;
  for (const match of text.matchAll(INLINE)) {
    if (match.index > at) nodes.push(document.createTextNode(text.slice(at, match.index)));
    const element = document.createElement(match[1] !== undefined ? 'code' : 'strong');
    element.textContent = match[1] ?? match[2];
    nodes.push(element);
    at = match.index + match[0].length;
  }
  if (at < text.length) nodes.push(document.createTextNode(text.slice(at)));
  return nodes;
}

export function markdownParagraphs(text: string): HTMLParagraphElement[] {
  return text
    .split(/\n\s*\n/)
    .map((paragraph) => paragraph.trim().replace(/\s*\n\s*/g, ' '))
    .filter((paragraph) => paragraph.length > 0)
    .map((paragraph) => {
      const element = document.createElement('p');
      element.append(...inline(paragraph));
      return element;
    });
}

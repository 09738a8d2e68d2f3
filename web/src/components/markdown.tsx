// A small Markdown subset for answers (fenced code, inline code, bold, lists, headings), built as
// elements, never as HTML strings: the model's text can hold anything, and it stays text.
import type { ComponentChildren, JSX } from "preact";

type Inline = (text: string, key: string) => ComponentChildren;

function inlineCode(text: string, key: string, rest: Inline): ComponentChildren[] {
  const out: ComponentChildren[] = [];
  const parts = text.split(/(`[^`\n]+`)/g);
  parts.forEach((part, i) => {
    if (part.startsWith("`") && part.endsWith("`") && part.length > 2) {
      out.push(<code key={`${key}c${i}`}>{part.slice(1, -1)}</code>);
    } else if (part) {
      const bold = part.split(/(\*\*[^*\n]+\*\*)/g);
      bold.forEach((b, j) => {
        if (b.startsWith("**") && b.endsWith("**") && b.length > 4) out.push(<strong key={`${key}b${i}-${j}`}>{rest(b.slice(2, -2), `${key}b${i}-${j}`)}</strong>);
        else if (b) out.push(rest(b, `${key}t${i}-${j}`));
      });
    }
  });
  return out;
}

function blocks(text: string, key: string, inline: Inline): JSX.Element[] {
  const out: JSX.Element[] = [];
  const paragraphs = text.split(/\n{2,}/);
  paragraphs.forEach((para, pi) => {
    const lines = para.split("\n").filter((l, i, all) => l.trim() || (i > 0 && i < all.length - 1));
    if (lines.length === 0) return;
    const k = `${key}p${pi}`;
    const bullet = /^\s*[-*•]\s+/;
    const numbered = /^\s*\d+[.)]\s+/;
    if (lines.every((l) => bullet.test(l) || !l.trim())) {
      out.push(
        <ul key={k}>
          {lines.filter((l) => l.trim()).map((l, i) => (
            <li key={i}>{inlineCode(l.replace(bullet, ""), `${k}l${i}`, inline)}</li>
          ))}
        </ul>,
      );
      return;
    }
    if (lines.every((l) => numbered.test(l) || !l.trim())) {
      out.push(
        <ol key={k}>
          {lines.filter((l) => l.trim()).map((l, i) => (
            <li key={i}>{inlineCode(l.replace(numbered, ""), `${k}l${i}`, inline)}</li>
          ))}
        </ol>,
      );
      return;
    }
    const heading = /^#{1,6}\s+(.*)$/.exec(lines[0]);
    if (heading && lines.length === 1) {
      out.push(
        <p key={k} class="md-heading">
          {inlineCode(heading[1], k, inline)}
        </p>,
      );
      return;
    }
    out.push(<p key={k}>{inlineCode(lines.join("\n"), k, inline)}</p>);
  });
  return out;
}

export function Markdown({ text, inline }: { text: string; inline: Inline }) {
  const out: JSX.Element[] = [];
  // Fences first: ```lang ... ``` (an unclosed one, mid-stream, runs to the end).
  const fence = /```([^\n`]*)\n([\s\S]*?)(?:```|$)/g;
  let at = 0;
  let i = 0;
  for (const m of text.matchAll(fence)) {
    if (m.index! > at) out.push(...blocks(text.slice(at, m.index), `b${i}`, inline));
    out.push(
      <pre key={`f${i}`} class="md-code" tabIndex={0}>
        <code>{m[2].replace(/\n$/, "")}</code>
      </pre>,
    );
    at = m.index! + m[0].length;
    i++;
  }
  if (at < text.length) out.push(...blocks(text.slice(at), `b${i}`, inline));
  return <>{out}</>;
}

// A report as data (sections of text, tables and charts), rendered to Markdown and to one
// self-contained HTML page. Experiments build a ReportDoc; the renderers know nothing of them.
import { escapeXml, renderCharts, type Chart } from './charts';

export interface Table {
  caption?: string;
  columns: string[];
  rows: (string | number)[][];
}

export interface Section {
  heading: string;
  text?: string[];
  tables?: Table[];
  /** Vega-Lite charts (charts.ts), drawn as SVG in the HTML only. */
  charts?: Chart[];
}

export interface ReportDoc {
  title: string;
  subtitle?: string;
  sections: Section[];
}

// Numbers (and "n/a" in their place) are right-aligned, text left-aligned.
const NUMERIC = /^(n\/a|[-+−]?[\d.]+(e[-+]?\d+)?( ± [\d.]+| \/ [\d.]+)?)$/;
const cellText = (v: string | number) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(4)) : v);

export function renderMarkdown(doc: ReportDoc): string {
  const out = [`# ${doc.title}`, ''];
  if (doc.subtitle) out.push(doc.subtitle, '');
  for (const s of doc.sections) {
    out.push(`## ${s.heading}`, '');
    for (const t of s.text ?? []) out.push(t, '');
    for (const t of s.tables ?? []) {
      if (t.caption) out.push(`**${t.caption}**`, '');
      out.push(`| ${t.columns.join(' | ')} |`, `|${t.columns.map(() => '---').join('|')}|`);
      for (const r of t.rows) out.push(`| ${r.map(cellText).join(' | ')} |`);
      out.push('');
    }
  }
  return out.join('\n');
}

/** One self-contained page: the charts inline as SVG, no scripts, no external resources. */
export async function renderHtml(doc: ReportDoc): Promise<string> {
  const body: string[] = [`<h1>${escapeXml(doc.title)}</h1>`];
  if (doc.subtitle) body.push(`<p class="subtitle">${escapeXml(doc.subtitle)}</p>`);
  for (const s of doc.sections) {
    body.push(`<section><h2>${escapeXml(s.heading)}</h2>`);
    for (const t of s.text ?? []) body.push(`<p>${escapeXml(t)}</p>`);
    for (const t of s.tables ?? []) {
      body.push('<table>');
      if (t.caption) body.push(`<caption>${escapeXml(t.caption)}</caption>`);
      body.push(`<thead><tr>${t.columns.map((c) => `<th>${escapeXml(c)}</th>`).join('')}</tr></thead><tbody>`);
      for (const r of t.rows) body.push(`<tr>${r.map((v) => `<td${NUMERIC.test(cellText(v)) ? ' class="num"' : ''}>${escapeXml(cellText(v))}</td>`).join('')}</tr>`);
      body.push('</tbody></table>');
    }
    if (s.charts?.length) body.push(`<div class="charts">${(await renderCharts(s.charts)).join('\n')}</div>`);
    body.push('</section>');
  }
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeXml(doc.title)}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; padding: 0 1em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
td.num { text-align: right; white-space: nowrap; }
caption { font-weight: bold; text-align: left; padding: 4px 0; }
.charts { display: flex; flex-wrap: wrap; gap: 1.5em; align-items: flex-start; }
.charts svg { max-width: 100%; height: auto; }
.subtitle { color: #555; }
</style></head>
<body>
${body.join('\n')}
</body></html>
`;
}

// Reports: Markdown and HTML from one document; the HTML page loads in headless Chromium
// without console errors and draws its charts.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { renderHtml, renderMarkdown, type ReportDoc } from '../src/report/document';
import { heatmap, lineChart } from '../src/report/svg';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p));

function sampleDoc(): ReportDoc {
  return {
    title: 'Sample <report>',
    subtitle: 'two charts & a table',
    sections: [
      {
        heading: 'Verification',
        text: ['Accuracy stays within a point.'],
        tables: [{ caption: 'LFW', columns: ['condition', 'accuracy'], rows: [['A vs A', 0.9912], ['A->B vs B', 0.98]] }],
        charts: [
          lineChart([{ name: 'A', points: [[1e-3, 0.5], [1e-2, 0.8], [1, 1]] }, { name: 'A->B', points: [[1e-3, 0.4], [1e-1, 0.9], [1, 1]] }], { title: 'ROC', xLabel: 'FAR', yLabel: 'TAR', logX: true, yRange: [0, 1] }),
          heatmap([[null, 0.98], [0.97, null]], ['m1', 'm2'], ['m1', 'm2'], { title: 'Retention' }),
        ],
      },
    ],
  };
}

test('markdown and html carry the same tables, html escapes text', () => {
  const doc = sampleDoc();
  const md = renderMarkdown(doc);
  assert.match(md, /^# Sample <report>/);
  assert.match(md, /\| A->B vs B \| 0\.9800 \|/);
  const html = renderHtml(doc);
  assert.match(html, /<title>Sample &lt;report&gt;<\/title>/);
  assert.match(html, /<td>A-&gt;B vs B<\/td><td>0\.9800<\/td>/);
  assert.equal((html.match(/<svg /g) ?? []).length, 2);
  assert.ok(!/<script/i.test(html), 'self-contained: no scripts');
  assert.ok(!/(src|href)="http/i.test(html), 'self-contained: no external resources');
});

test('the html page loads in headless Chromium without console errors and draws its charts', async (t) => {
  if (!CHROMIUM) return t.skip('Chromium not installed (apt-get install chromium)');
  const { chromium } = await import('playwright-core');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'embmap-report-'));
  const file = path.join(dir, 'report.html');
  fs.writeFileSync(file, renderHtml(sampleDoc()));
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`file://${file}`);
    // Runs in the page (a string: this project compiles without the DOM typings).
    const drawn = (await page.evaluate(`[...document.querySelectorAll('svg.chart')].map((svg) => ({
      width: svg.getBoundingClientRect().width,
      lines: [...svg.querySelectorAll('polyline.series')].map((p) => p.getBBox().width),
      cells: svg.querySelectorAll('rect.cell').length,
    }))`)) as { width: number; lines: number[]; cells: number }[];
    assert.deepEqual(errors, []);
    assert.equal(drawn.length, 2);
    assert.ok(drawn.every((c) => c.width > 100));
    assert.equal(drawn[0].lines.length, 2);
    assert.ok(drawn[0].lines.every((w) => w > 50), 'ROC lines have extent');
    assert.equal(drawn[1].cells, 4);
    await page.screenshot({ path: path.join(dir, 'report.png') });
    assert.ok(fs.statSync(path.join(dir, 'report.png')).size > 1000);
  } finally {
    await browser.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

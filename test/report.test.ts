// Reports: Markdown and HTML from one document, built from experiment results; the charts
// (Vega-Lite rendered to SVG) show percent, limit the ROC to the FAR the pairs resolve, carry a
// colour scale and reference lines; in headless Chromium the page loads without console errors,
// and no text leaves its chart or is cut short.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { evaluateVerification, type ScoredPair, type VerificationResult } from '../src/evaluate/verification';
import type { ClassificationResult } from '../src/experiments/classification';
import type { FacesResult } from '../src/experiments/faces';
import { reportDoc } from '../src/experiments/report';
import { renderCharts } from '../src/report/charts';
import { renderHtml, renderMarkdown } from '../src/report/document';
import { gaussian, makeRng } from './helpers/random';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p));
const rng = makeRng('report.test');

// Long model names on purpose: labels and legend entries must be shown whole.
const FACE = ['faceres', 'mobileface-long-descriptive-name', 'faceapi-resnet'];
const CLS = ['mobilenet-v1-0.25-128', 'mobilenet-v1-0.5-160', 'mobilenet-v1-0.75-192-quantised'];
const IMPOSTORS = 80;

function verification(separation: number): VerificationResult {
  const pairs: ScoredPair[] = Array.from({ length: 2 * IMPOSTORS }, (_, i) => ({ same: i % 2 === 0, score: gaussian(rng) + (i % 2 === 0 ? separation : 0), fold: i % 4 }));
  return evaluateVerification(pairs);
}

function facesResult(): FacesResult {
  const models = FACE.map((id, i) => ({ id, dim: 128 * (i + 1), verification: verification(3 - i * 0.5) }));
  const crosses = FACE.flatMap((a) => FACE.filter((b) => b !== a).map((b) => {
    const native = models.find((m) => m.id === b)!.verification, cross = verification(2), bothMapped = verification(2.2);
    const ident = { queries: 40, rank1: 0.9, rank5: 0.95, cmc: [0.9, 0.95], recallAt: {} };
    return { source: a, target: b, lambda: 0.1, lambdaRule: 'gcv', native, cross, bothMapped, fittedOnTest: 0.95, penaltyPoints: 100 * (native.accuracy - cross.accuracy), identification: { native: ident, mapped: { ...ident, rank1: 0.8 } } };
  }));
  return {
    config: { lfw: 'lfw', models: FACE, work: 'w', fitImages: 250 } as FacesResult['config'],
    pairs: 2 * IMPOSTORS, fitPairs: 250, views: 3, fitRows: 750, models, crosses,
    curves: { source: FACE[1], target: FACE[0], pairs: [[25, 0.712], [50, 0.80], [100, 0.853], [250, 0.8875]], pairsLambda: [], rank: [[4, 0.6], [8, 0.7], [16, 0.8], [32, 0.85], [64, 0.87], [128, 0.88]] },
  };
}

function classificationResult(): ClassificationResult {
  const top = (t: number) => ({ top1: t, top5: Math.min(1, t + 0.2) });
  const models = CLS.map((id, i) => ({ id, dim: 256 * (i + 1), test: top(0.4 + 0.1 * i) }));
  const pairs = CLS.flatMap((a, i) => CLS.filter((b) => b !== a).map((b, j) => {
    const native = models.find((m) => m.id === b)!.test.top1, mapped = native * (0.8 + 0.05 * (i + j));
    const weaker = Math.min(native, models.find((m) => m.id === a)!.test.top1);
    return {
      source: a, target: b, mapped: top(mapped), weights: top(mapped - 0.05), retention: mapped / native, dropPoints: 100 * (native - mapped), weightsDropPoints: 100 * (native - mapped + 0.05),
      weakerDropPoints: 100 * (weaker - mapped), weightsWeakerDropPoints: 100 * (weaker - mapped + 0.05), agreement: 0.7,
      selection: 'cv-top1', lambda: i === j ? Infinity : 3100 * (i + 1),
    };
  }));
  const methods = [{ label: 'ridge-prior', method: 'ridge', params: { prior: 'weights' }, pairs, medianDropPoints: 5, medianWeakerDropPoints: 4 }];
  const curve = [50, 100, 300].map((n, i) => ({
    images: n, rows: 3 * n, medians: { 'ridge-prior': { dropPoints: 12 - 3 * i, weakerDropPoints: 11 - 3 * i } },
    medianDropPoints: 12 - 3 * i, medianWeightsDropPoints: 9, worstOverWeightsPoints: 4 - i, pairs: [],
  }));
  const trends = [{ label: 'ridge-prior', kind: 'linear in ln(images)' as const, intercept: 20, slope: -2.7, r2: 1, extrapolation: { images: 1281167, dropPoints: -17.9 } }];
  return {
    config: { images: 'i', models: CLS, work: 'w', method: 'ridge', params: { prior: 'weights' } } as ClassificationResult['config'], images: 600, fitImages: 300, fitRows: 900, testImages: 300,
    sources: [{ source: 'i', images: 600, fitImages: 300, testImages: 300, views: 3 }], models, pairs,
    medianDropPoints: 5, medianWeightsDropPoints: 9, medianWeakerDropPoints: 4, medianWeightsWeakerDropPoints: 8, methods, curve, trends,
  };
}

const results = { classification: classificationResult(), faces: facesResult() };

test('markdown and html carry the same tables in percent, a glossary, html escapes text and is self-contained', async () => {
  const doc = reportDoc(results, 'Sample <report>');
  const md = renderMarkdown(doc);
  assert.match(md, /^# Sample <report>/);
  const html = await renderHtml(doc);
  assert.match(html, /<title>Sample &lt;report&gt;<\/title>/);
  for (const p of results.classification.pairs) {
    const row = `| ${p.source} | ${p.target} |`;
    assert.ok(md.includes(row), row);
    assert.ok(md.includes(`| ${(100 * p.retention).toFixed(2)} | ${(100 * p.agreement).toFixed(2)} |`), 'retention and agreement in percent');
  }
  assert.match(md, /retention % \| agreement with B % \| head-only map top-1 % \| lambda \(rule\) \|/);
  // Which rule chose each lambda, the prior kept said in words, the sample-size curve, the scale against the paper's.
  const kept = results.classification.pairs.filter((p) => p.lambda === Infinity).length;
  assert.ok(kept > 0 && md.split('| prior kept (cv-top1) |').length - 1 === kept, 'prior kept, per pair');
  assert.ok(md.includes('| 3.1e+3 (cv-top1) |'), 'a finite lambda and its rule');
  assert.ok(md.includes(`(ridge-prior: lambda by cv-top1; ${kept} of ${results.classification.pairs.length} kept the prior)`));
  for (const c of results.classification.curve!) assert.ok(md.includes(`| ${c.images} | ${c.rows} | ${c.medians['ridge-prior'].dropPoints.toFixed(2)} | ${c.medians['ridge-prior'].weakerDropPoints.toFixed(2)} | ${c.worstOverWeightsPoints.toFixed(2)} | 9.00 |`), `curve at ${c.images}`);
  assert.match(md, /1\.28 M training images; these rest on 300, about 4,300 times fewer/);
  assert.match(md, /docs\/RESULTS\.md in the embmap repository/);
  // The faces' views: how many, the rows they gave, and the curve counted in distinct images.
  assert.match(md, /fitted on 250 images of people who appear in no pair × 3 views each \(750 rows: the plain image and 2 seeded augmentations of its face; test images plain\)/);
  assert.match(md, /against fitting images \(each × 3 views\)/);
  // 80 impostor pairs cannot resolve FAR 1e-2 or 1e-3.
  assert.match(md, /\| faceres \| 128 \| [\d.]+ ± [\d.]+ \| [\d.]+ \| [\d.]+ \| n\/a \| n\/a \|/);
  for (const term of ['retention %', 'both mapped %', 'penalty (points)', 'A→B']) assert.match(md, new RegExp(`\\| ${term.replace(/[()]/g, '\\$&')} \\| \\w`), `glossary explains ${term}`);
  assert.match(html, /<h2>Terms<\/h2>/);
  assert.equal((html.match(/<svg /g) ?? []).length, 5);
  assert.ok(!/<script/i.test(html), 'self-contained: no scripts');
  assert.ok(!/(src|href)="http/i.test(html), 'self-contained: no external resources');
});

test('charts: percent axes, ROC from 1/impostors, reference line, colour scale, nothing truncated', async () => {
  const doc = reportDoc(results, 'charts');
  const [heat] = doc.sections[0].charts!;
  const [roc, pairs, rank] = doc.sections[1].charts!;
  const svgs = await renderCharts([heat, roc, pairs, rank]);
  const texts = svgs.map((s) => [...s.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]));
  for (const t of texts) assert.ok(t.every((s) => !s.includes('…')), 'no label cut short');
  // Heat map: every label whole, values in percent, a gradient legend titled in percent.
  for (const id of CLS) assert.ok(texts[0].includes(id), `heat-map label ${id}`);
  const cell = (100 * results.classification.pairs[0].retention).toFixed(1);
  assert.ok(texts[0].includes(cell), `cell value ${cell} in percent`);
  assert.match(svgs[0], /<linearGradient/);
  assert.ok(texts[0].includes('retention %'));
  // ROC: FAR from 1/80 (no tick below it), TAR in percent.
  const rocSpec = JSON.stringify(roc.spec);
  assert.ok(rocSpec.includes(`"domain":[${1 / IMPOSTORS},1]`), 'FAR axis starts at 1/impostors');
  const ticks = texts[1].map(Number).filter((v) => v > 0 && v < 1);
  assert.ok(ticks.length >= 2 && ticks.every((v) => v >= 1 / IMPOSTORS), `FAR ticks ${ticks} from 1/${IMPOSTORS} on`);
  assert.ok(texts[1].includes('100') && texts[1].includes('true accept rate (%)'));
  for (const id of FACE) assert.ok(texts[1].includes(`${id} (native)`), `legend entry for ${id}`);
  // Accuracy curves: percent, with the target's own accuracy as a named dashed line at its value.
  const own = 100 * results.faces.crosses.find((c) => c.source === FACE[1] && c.target === FACE[0])!.native.accuracy;
  for (const [i, spec] of [[2, pairs.spec], [3, rank.spec]] as const) {
    assert.ok(texts[i].includes(`${FACE[0]} vs ${FACE[0]} (its own accuracy)`), 'reference line in the legend');
    assert.ok(JSON.stringify(spec).includes(`"values":[{"y":${own}}]`), 'reference line at the target accuracy');
    assert.match(svgs[i], /stroke-dasharray="6,4"/);
  }
  // Sample-size curve: measured points solid, the trend dashed out to ImageNet's 1.28 M (an extrapolation, said in the legend), head-only as reference.
  const [, curve] = doc.sections[0].charts!;
  const [curveSvg] = await renderCharts([curve]);
  const curveTexts = [...curveSvg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
  assert.ok(curveTexts.includes('ridge-prior (measured)') && curveTexts.some((t) => /ridge-prior trend a \+ b·ln n, extrapolated past 300/.test(t)), `curve legend: ${curveTexts}`);
  assert.ok(curveTexts.includes('head-only map (no images)'));
  assert.ok(JSON.stringify(curve.spec).includes(`"x":1281167,"y":${20 - 2.7 * Math.log(1281167)}`), 'the trend is drawn to 1.28 M images at its value there');
  assert.match(curveSvg, /stroke-dasharray="6,4"/);
    // Nice ticks on the pairs axis (25..250): 50, 100, 200, not 44.5, 79.1 or 141 (y ticks are at most 100).
  const numbers = texts[2].filter((s) => /^[\d.]+$/.test(s)).map(Number);
  assert.ok(numbers.every(Number.isInteger), `integer ticks: ${numbers}`);
  assert.deepEqual(numbers.filter((v) => v > 100), [200]);
  assert.ok(numbers.includes(50) && numbers.includes(100));
});

test('the html page loads in headless Chromium without console errors; no text outside its chart', async (t) => {
  if (!CHROMIUM) return t.skip('Chromium not installed (apt-get install chromium)');
  const { chromium } = await import('playwright-core');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'embmap-report-'));
  const file = path.join(dir, 'report.html');
  fs.writeFileSync(file, await renderHtml(reportDoc(results, 'Sample report')));
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const errors: string[] = [];
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`file://${file}`);
    // Runs in the page (a string: this project compiles without the DOM typings). Each chart's
    // texts must lie inside its SVG's box, as drawn with the browser's real fonts.
    const drawn = (await page.evaluate(`[...document.querySelectorAll('svg.chart')].map((svg) => {
      const box = svg.getBoundingClientRect();
      const outside = [...svg.querySelectorAll('text')].filter((t) => t.textContent.trim()).map((t) => [t.textContent, t.getBoundingClientRect()])
        .filter(([, r]) => r.left < box.left - 0.5 || r.right > box.right + 0.5 || r.top < box.top - 0.5 || r.bottom > box.bottom + 0.5)
        .map(([s]) => s);
      return { label: svg.getAttribute('aria-label'), width: box.width, outside, lines: svg.querySelectorAll('.mark-line path').length };
    })`)) as { label: string; width: number; outside: string[]; lines: number }[];
    const ids = (await page.evaluate(`[...document.querySelectorAll('[id]')].map((e) => e.id)`)) as string[];
    assert.deepEqual(errors, []);
    assert.equal(drawn.length, 5);
    for (const c of drawn) {
      assert.ok(c.width > 200, `${c.label} is drawn`);
      assert.deepEqual(c.outside, [], `${c.label}: text outside the chart`);
    }
    assert.equal(drawn.find((c) => c.label === 'LFW ROC')!.lines, FACE.length + 1, 'one ROC line per network and the mapped pair');
    assert.ok(drawn.some((c) => c.label === 'Median top-1 drop against distinct fitting images'), 'the sample-size curve is drawn');
    assert.equal(new Set(ids).size, ids.length, 'ids unique across the inline SVGs');
    await page.screenshot({ path: path.join(dir, 'report.png'), fullPage: true });
    assert.ok(fs.statSync(path.join(dir, 'report.png')).size > 10000);
    if (process.env.EMBMAP_KEEP_SCREENSHOT) fs.copyFileSync(path.join(dir, 'report.png'), process.env.EMBMAP_KEEP_SCREENSHOT);
  } finally {
    await browser.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

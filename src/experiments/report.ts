// Experiment results as a report: every number in JSON, a Markdown summary, and one HTML page
// with the charts (retention heatmap, ROC curves, accuracy against pairs and against rank) and a
// glossary of its terms.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { VerificationResult } from '../evaluate/verification';
import { writeFileAtomic } from '../io/atomic';
import { keepNonFinite } from '../io/json';
import { heatmap, lineChart, type Chart } from '../report/charts';
import { renderHtml, renderMarkdown, type ReportDoc, type Section } from '../report/document';
import { VERSION } from '../version';
import type { ClassificationResult } from './classification';
import { IMAGENET_TRAIN_IMAGES, trendAt } from './curve';
import type { FacesResult } from './faces';

export interface ExperimentResults {
  faces?: FacesResult;
  classification?: ClassificationResult;
}

// Accuracies, rates and ratios are shown in percent everywhere (tables and charts).
const pct = (v: number) => `${(100 * v).toFixed(2)}`;
const pm = (m: number, s: number) => `${pct(m)} ± ${pct(s)}`;

export function classificationSection(r: ClassificationResult): Section {
  const ids = r.models.map((m) => m.id);
  const retention = ids.map((a) => ids.map((b) => (a === b ? null : 100 * r.pairs.find((p) => p.source === a && p.target === b)!.retention)));
  const first = r.methods[0].label;
  const rules = [...new Set(r.pairs.map((p) => p.selection).filter(Boolean))];
  const kept = r.pairs.filter((p) => p.lambda === Infinity).length;
  const prior = r.methods[0].params?.prior !== undefined;
  const chosen = rules.length ? ` (${first}: lambda by ${rules.join(', ')}${prior ? `; ${kept} of ${r.pairs.length} kept the prior` : ''})` : '';
  const sources = r.sources.map((s) => `${path.basename(s.source)}: ${s.fitImages} fitted on${s.views > 1 ? ` (× ${s.views} views)` : ''}, ${s.testImages} tested`).join('; ');
  return {
    heading: `Classification: ${r.models.length} classifiers, ${r.pairs.length} ordered pairs`,
    text: [
      `${r.images} images (${r.fitImages} distinct images, ${r.fitRows} rows, to fit the maps; ${r.testImages} other images evaluated, never augmented): ${sources}. Maps by ${r.methods.map((m) => m.label).join(', ')} on paired embeddings, and by the closed form from the two heads (no images)${chosen}.`,
      `Median top-1 drop over ordered pairs: ${r.medianDropPoints.toFixed(2)} points with ${first} maps, ${r.medianWeightsDropPoints.toFixed(2)} points with head-only maps (paper: 1.9 points over 90 maps between 10 CNNs); against the weaker of A and B (a map cannot carry more than A has): ${r.medianWeakerDropPoints.toFixed(2)} and ${r.medianWeightsWeakerDropPoints.toFixed(2)} points.`,
      ...(r.trends ? [`Trends: median drop = a + b·ln(images), least squares over the measured sizes; its value at ImageNet's ${IMAGENET_TRAIN_IMAGES.toLocaleString('en')} training images is an extrapolation far past them, not a measurement: ${r.trends.map((t) => `${t.label} ${t.extrapolation.dropPoints.toFixed(1)}`).join(', ')} points.`] : []),
      `Scale: the paper fitted its maps on ImageNet's 1.28 M training images; these rest on ${r.fitImages}, about ${Number((1.28e6 / Math.max(r.fitImages, 1)).toPrecision(2)).toLocaleString('en-US')} times fewer, so ` +
        'maps fitted on images alone lose far more here than in the paper, and what this run reproduces at the paper\'s scale is the head-only maps, which need no images (and fitted maps shrunk toward them). ' +
        'The full-resolution runs, with curves over more distinct images, are in docs/RESULTS.md in the embmap repository.',
    ],
    tables: [
      { caption: 'Native accuracy (test images)', columns: ['model', 'dim', 'top-1 %', 'top-5 %'], rows: r.models.map((m) => [m.id, m.dim, pct(m.test.top1), pct(m.test.top5)]) },
      {
        caption: `A mapped into B by ${first}, through B's head`,
        columns: ['A', 'B', 'B top-1 %', 'A→B top-1 %', 'drop (points)', 'drop vs weaker (points)', 'retention %', 'agreement with B %', 'head-only map top-1 %', 'lambda (rule)'],
        rows: r.pairs.map((p) => {
          const native = r.models.find((m) => m.id === p.target)!.test.top1;
          return [p.source, p.target, pct(native), pct(p.mapped.top1), p.dropPoints.toFixed(2), p.weakerDropPoints.toFixed(2), pct(p.retention), pct(p.agreement), pct(p.weights.top1), lambdaText(p)];
        }),
      },
      {
        caption: 'Median top-1 drop over the ordered pairs, by map',
        columns: ['map', 'drop (points)', 'drop vs weaker (points)'],
        rows: [
          ...r.methods.map((m) => [m.label, m.medianDropPoints.toFixed(2), m.medianWeakerDropPoints.toFixed(2)]),
          ['head-only', r.medianWeightsDropPoints.toFixed(2), r.medianWeightsWeakerDropPoints.toFixed(2)],
        ],
      },
      ...(r.curve ? [{
        caption: 'Median drop (points) against the number of distinct fitting images',
        columns: ['images', 'rows', ...r.methods.flatMap((m) => [`${m.label} drop`, `${m.label} vs weaker`]), `${first}: worst pair minus its head-only drop`, 'head-only drop'],
        rows: r.curve.map((c) => [c.images, c.rows, ...r.methods.flatMap((m) => [c.medians[m.label].dropPoints.toFixed(2), c.medians[m.label].weakerDropPoints.toFixed(2)]), c.worstOverWeightsPoints.toFixed(2), c.medianWeightsDropPoints.toFixed(2)]),
      }] : []),
    ],
    charts: [
      heatmap(retention, ids, ids, { title: `Top-1 retention: A→B (${first}) top-1 / B top-1`, rowTitle: 'A (mapped from)', colTitle: "B (mapped into, through B's head)", unit: 'retention %' }),
      ...(r.curve ? [curveChart(r)] : []),
    ],
  };
}

/** A fitted map's lambda and the rule that chose it: "prior kept" for lambda = Infinity. */
function lambdaText(p: { selection?: string; lambda?: number }): string {
  if (p.lambda === undefined) return p.selection ?? '-';
  return `${p.lambda === Infinity ? 'prior kept' : p.lambda.toPrecision(2)} (${p.selection ?? 'fixed'})`;
}

/** Median drop against distinct fitting images (log): measured per map, each trend dashed out to ImageNet's size, the head-only map's drop as reference. */
function curveChart(r: ClassificationResult): Chart {
  const curve = r.curve!;
  const measured = r.methods.map((m) => ({ name: `${m.label} (measured)`, points: curve.map((c) => [c.images, c.medians[m.label].dropPoints] as [number, number]) }));
  const trends = (r.trends ?? []).map((t) => ({
    name: `${t.label} trend a + b·ln n, extrapolated past ${curve.at(-1)!.images}`,
    points: [curve[0].images, IMAGENET_TRAIN_IMAGES].map((n) => [n, trendAt(t, n)] as [number, number]),
    dashed: true,
  }));
  return lineChart([...measured, ...trends], {
    title: 'Median top-1 drop against distinct fitting images', xLabel: 'distinct fitting images (log; dashed: extrapolation)', yLabel: 'median drop (points)', logX: true,
    reference: { name: 'head-only map (no images)', y: r.medianWeightsDropPoints },
  });
}

/** TAR at a FAR as a percent, or n/a where the pairs cannot resolve that FAR (fewer than 1/FAR impostor pairs). */
function tarAt(v: VerificationResult, far: string): string {
  return v.impostors * Number(far) < 1 ? 'n/a' : pct(v.tarAtFar[far]);
}

export function facesSection(r: FacesResult): Section {
  const best = r.crosses.length ? r.crosses.reduce((x, y) => (y.penaltyPoints < x.penaltyPoints ? y : x)) : undefined;
  const charts: Chart[] = [];
  // The ROC's FAR axis starts at 1 / impostor pairs: no smaller FAR is measured.
  const rocSeries = (v: VerificationResult) => v.roc.map((p) => [p.far, 100 * p.tar] as [number, number]);
  if (best) {
    charts.push(lineChart(
      [
        ...r.models.map((m) => ({ name: `${m.id} (native)`, points: rocSeries(m.verification) })),
        { name: `${best.source}→${best.target} vs ${best.target}`, points: rocSeries(best.cross) },
      ],
      { title: 'LFW ROC', xLabel: `false accept rate (log; from 1/${best.cross.impostors} impostor pairs)`, yLabel: 'true accept rate (%)', logX: true, xDomain: [1 / best.cross.impostors, 1], yDomain: [0, 100] },
    ));
  }
  const curve = r.crosses.find((c) => c.source === r.curves.source && c.target === r.curves.target);
  const curveChart = (points: [number, number][], title: string, xLabel: string) => lineChart(
    [{ name: `${r.curves.source}→${r.curves.target} vs ${r.curves.target}`, points: points.map(([x, a]) => [x, 100 * a]) }],
    { title, xLabel, yLabel: 'verification accuracy (%)', logX: true, ...(curve ? { reference: { name: `${r.curves.target} vs ${r.curves.target} (its own accuracy)`, y: 100 * curve.native.accuracy } } : {}) },
  );
  const perImage = r.views > 1 ? ` (each × ${r.views} views)` : '';
  if (r.curves.pairs.length) charts.push(curveChart(r.curves.pairs, 'Accuracy against fitting images', `fitting images${perImage} (log)`));
  if (r.curves.rank.length) charts.push(curveChart(r.curves.rank, 'Accuracy against the rank of the map', 'rank k of the map (log)'));
  const impostors = r.models[0]?.verification.impostors;
  return {
    heading: `Faces: LFW verification, ${r.models.length} networks, ${r.crosses.length} ordered pairs`,
    text: [
      `${r.pairs} pairs of pairs.txt (${impostors} of them impostor pairs), ${r.config.folds ? `folds ${r.config.folds.join(', ')}` : 'all folds'}; maps (${r.config.method} ${JSON.stringify(r.config.params)}) fitted on ${r.fitPairs} images of people who appear in no pair${facesViews(r)}; ${facesPreprocessing(r)}.`,
      best ? `Best pair: ${best.source}→${best.target}, ${Math.abs(best.penaltyPoints).toFixed(2)} points ${best.penaltyPoints >= 0 ? 'below' : 'above'} ${best.target}'s own accuracy (paper: at most 1.0 point between 4 face CNNs).` : '',
      impostors !== undefined && impostors < 1000 ? `TAR at a FAR below 1/${impostors} is not measurable with ${impostors} impostor pairs (n/a).` : '',
    ].filter(Boolean),
    tables: [
      {
        caption: 'Native verification (same network on both sides)',
        columns: ['model', 'dim', 'accuracy %', 'AUC', 'EER %', 'TAR@FAR=1e-2 %', 'TAR@FAR=1e-3 %'],
        rows: r.models.map((m) => [m.id, m.dim, pm(m.verification.accuracy, m.verification.accuracyStd), m.verification.auc.toFixed(4), pct(m.verification.eer), tarAt(m.verification, '1e-2'), tarAt(m.verification, '1e-3')]),
      },
      {
        caption: 'Cross-model: A mapped into B',
        columns: ['A', 'B', 'B vs B %', 'A→B vs B %', 'penalty (points)', 'both mapped %', 'AUC A→B vs B', 'rank-1 B / A→B %', 'λ (rule)', 'bound: fitted on test %'],
        rows: r.crosses.map((c) => [c.source, c.target, pm(c.native.accuracy, c.native.accuracyStd), pm(c.cross.accuracy, c.cross.accuracyStd), c.penaltyPoints.toFixed(2), pct(c.bothMapped.accuracy), c.cross.auc.toFixed(4), `${pct(c.identification.native.rank1)} / ${pct(c.identification.mapped.rank1)}`, lambdaText({ lambda: c.lambda, selection: c.lambdaRule }), pct(c.fittedOnTest)]),
      },
      ...(r.windows ? [{
        caption: `Each network's window of the aligned canvas${r.crops ? ` (chosen on ${r.crops.ids.length} fitting-pool images of people in no pair: ${r.crops.matched} matched, ${r.crops.mismatched} mismatched pairs)` : ''}`,
        columns: ['model', 'crop', 'centre', 'channels', ...(r.crops ? ['pool accuracy % (balanced)', 'pool AUC'] : [])],
        rows: Object.entries(r.windows).map(([id, w]) => {
          const t = r.crops?.trials[id]?.[0];
          return [id, w.crop, `${w.centre.join(', ')}`, w.channels, ...(r.crops ? [t ? pct(t.accuracy) : '', t ? t.auc.toFixed(4) : ''] : [])];
        }),
      }] : []),
      ...(r.curves.pairs.length ? [{ caption: `Accuracy of ${r.curves.source}→${r.curves.target} vs ${r.curves.target} against fitting images${perImage}`, columns: ['images', 'accuracy %', 'λ (rule)'], rows: r.curves.pairs.map(([n, a], i) => [n, pct(a), lambdaText({ lambda: r.curves.pairsLambda[i]?.lambda, selection: r.curves.pairsLambda[i]?.rule })]) }] : []),
      ...(r.curves.rank.length ? [{ caption: 'Against the rank of the map', columns: ['rank', 'accuracy %'], rows: r.curves.rank.map(([k, a]) => [k, pct(a)]) }] : []),
    ],
    charts,
  };
}

const TERMS: Record<'common' | 'classification' | 'faces', [string, string][]> = {
  common: [
    ['A→B', "network A's embedding mapped by the fitted linear map into network B's embedding space"],
    ['points', 'percentage points: a difference of two percentages'],
  ],
  classification: [
    ['top-1 / top-5 %', "the share of test images whose true class is the first / among the first five of B's head"],
    ['drop (points)', 'B top-1 % minus A→B top-1 %: what classifying through the map costs'],
    ['drop vs weaker (points)', "the lower of A's and B's own top-1 % minus A→B top-1 %: a map cannot carry more than the source network has"],
    ['distinct fitting images, rows', 'images the maps are fitted on, and their rows: each image once, or once per augmented view (crop, flip, colour jitter)'],
    ['retention %', 'A→B top-1 as a percentage of B top-1 (100: nothing lost)'],
    ['agreement with B %', "the share of test images where B's head gives A→B the same top-1 class as B's own embedding"],
    ['head-only map', 'a map computed in closed form from the two classifier heads alone, without any images'],
    ['lambda (rule)', "the ridge penalty of a fitted map and how it was chosen: cv-top1 (k-fold top-1 agreement with B's own, through B's head), cv-logits, cv or gcv; prior kept: no penalty beat the prior map on the held-out folds, so the map is the prior"],
  ],
  faces: [
    ['B vs B %', "LFW verification accuracy with both images of a pair embedded by B (B's own accuracy), mean ± std over folds"],
    ['A→B vs B %', 'one image of each pair embedded by A and mapped into B, the other embedded by B'],
    ['penalty (points)', 'B vs B % minus A→B vs B %'],
    ['both mapped %', 'both images of each pair embedded by A and mapped into B'],
    ['TAR, FAR', 'true accept rate (same-person pairs accepted) and false accept rate (impostor pairs accepted) at one threshold'],
    ['AUC, EER', 'area under the ROC (1: perfect); equal error rate, where FAR equals the false reject rate'],
    ['rank-1 B / A→B %', 'identification against a gallery embedded by B: the share of probes, embedded by B / by A and mapped, whose nearest gallery face is the right person'],
    ['fitting images', "images of people in no evaluated pair, each embedded by both networks (with views, each of its views): the (A, B) pairs of embeddings the map is fitted on"],
    ['rank k', "the map's rank: a rank-k map goes through a k-dimensional subspace"],
    ['bound: fitted on test %', 'A→B vs B with a map fitted (ridge, GCV) on the evaluated images themselves: not a result, the most a linear map can do here'],
    ['λ (rule)', "ridge's penalty and what chose it: gcv (generalised cross-validation of the embedding error), cv (k-fold, embedding error), task (verification accuracy on held-out identities of the fitting set), fixed"],
  ],
};

function glossary(results: ExperimentResults): Section {
  const terms = [...TERMS.common, ...(results.classification ? TERMS.classification : []), ...(results.faces ? TERMS.faces : [])];
  return { heading: 'Terms', tables: [{ columns: ['term', 'meaning'], rows: terms }] };
}

/** How many rows the fitting images gave: views of the aligned faces, or the plain images. */
function facesViews(r: FacesResult): string {
  return r.views > 1 ? ` × ${r.views} views each (${r.fitRows} rows: the plain image and ${r.views - 1} seeded augmentations of its face; test images plain)` : ' (plain images, no views)';
}

function facesPreprocessing(r: FacesResult): string {
  const a = r.alignment;
  if (!a) return `faces by a centred crop of ${r.config.crop ?? "each card's own or 0.55"} of each side (no alignment)`;
  const failures = Object.entries(a.failures).map(([kind, n]) => `${n} ${kind}`).join(', ') || 'none';
  return `faces detected (BlazeFace) and aligned to ArcFace's 5-point template: ${a.aligned} of ${a.images} images aligned, ${a.fallback} without a usable face (${failures}) embedded from a centred crop, ${a.severalFaces} with several faces (the most central large one used)`;
}

export function reportDoc(results: ExperimentResults, title: string): ReportDoc {
  const sections: Section[] = [];
  if (results.classification) sections.push(classificationSection(results.classification));
  if (results.faces) sections.push(facesSection(results.faces));
  sections.push(glossary(results));
  return { title, subtitle: `embmap ${VERSION}, ${new Date().toISOString()}`, sections };
}

/** Writes report.json, report.md and report.html into `dir` (each atomically); returns their paths. */
export async function writeReport(results: ExperimentResults, dir: string, title: string): Promise<{ json: string; md: string; html: string }> {
  fs.mkdirSync(dir, { recursive: true });
  const doc = reportDoc(results, title);
  const files = { json: path.join(dir, 'report.json'), md: path.join(dir, 'report.md'), html: path.join(dir, 'report.html') };
  writeFileAtomic(files.json, [Buffer.from(JSON.stringify(results, keepNonFinite, 2) + '\n')]);
  writeFileAtomic(files.md, [Buffer.from(renderMarkdown(doc))]);
  writeFileAtomic(files.html, [Buffer.from(await renderHtml(doc))]);
  return files;
}

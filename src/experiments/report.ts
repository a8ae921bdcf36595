// Experiment results as a report: every number in JSON, a Markdown summary, and one HTML page
// with the charts (retention heatmap, ROC curves, accuracy against pairs and against rank).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../io/atomic';
import { renderHtml, renderMarkdown, type ReportDoc, type Section } from '../report/document';
import { heatmap, lineChart } from '../report/svg';
import { VERSION } from '../version';
import type { ClassificationResult } from './classification';
import type { FacesResult } from './faces';

export interface ExperimentResults {
  faces?: FacesResult;
  classification?: ClassificationResult;
}

const pct = (v: number) => `${(100 * v).toFixed(2)}`;
const pm = (m: number, s: number) => `${pct(m)} ± ${pct(s)}`;

export function classificationSection(r: ClassificationResult): Section {
  const ids = r.models.map((m) => m.id);
  const retention = ids.map((a) => ids.map((b) => (a === b ? null : r.pairs.find((p) => p.source === a && p.target === b)!.retention)));
  return {
    heading: `Classification: ${r.models.length} classifiers, ${r.pairs.length} ordered pairs`,
    text: [
      `${r.images} images (${r.fitImages} to fit the maps, ${r.testImages} evaluated); maps by ${r.config.method ?? 'lstsq'} on paired embeddings, and by the closed form from the two heads (no images).`,
      `Median top-1 drop over ordered pairs: ${r.medianDropPoints.toFixed(2)} points with fitted maps, ${r.medianWeightsDropPoints.toFixed(2)} points with head-only maps (paper: 1.9 points over 90 maps between 10 CNNs).`,
    ],
    tables: [
      { caption: 'Native accuracy (test images)', columns: ['model', 'dim', 'top-1 %', 'top-5 %'], rows: r.models.map((m) => [m.id, m.dim, pct(m.test.top1), pct(m.test.top5)]) },
      {
        caption: 'A mapped into B, through B\'s head',
        columns: ['A', 'B', 'B top-1 %', 'A→B top-1 %', 'drop (points)', 'retention', 'agreement with B', 'head-only map top-1 %'],
        rows: r.pairs.map((p) => {
          const native = r.models.find((m) => m.id === p.target)!.test.top1;
          return [p.source, p.target, pct(native), pct(p.mapped.top1), p.dropPoints.toFixed(2), p.retention.toFixed(3), p.agreement.toFixed(3), pct(p.weights.top1)];
        }),
      },
    ],
    charts: [heatmap(retention, ids.map((i) => `A: ${i}`), ids.map((i) => `B: ${i}`), { title: 'Top-1 retention (A→B / B)', digits: 2 })],
  };
}

export function facesSection(r: FacesResult): Section {
  const best = r.crosses.length ? r.crosses.reduce((x, y) => (y.penaltyPoints < x.penaltyPoints ? y : x)) : undefined;
  const charts: string[] = [];
  const rocSeries = (v: { roc: { far: number; tar: number }[] }) => v.roc.map((p) => [Math.max(p.far, 1e-4), p.tar] as [number, number]);
  if (best) {
    charts.push(
      lineChart(
        [
          ...r.models.map((m) => ({ name: `${m.id} (native)`, points: rocSeries(m.verification) })),
          { name: `${best.source}→${best.target} vs ${best.target}`, points: rocSeries(best.cross) },
        ],
        { title: 'LFW ROC', xLabel: 'false accept rate', yLabel: 'true accept rate', logX: true, yRange: [0, 1] },
      ),
    );
  }
  if (r.curves.pairs.length) {
    charts.push(lineChart([{ name: `${r.curves.source}→${r.curves.target}`, points: r.curves.pairs }], { title: 'Accuracy against fitting pairs', xLabel: 'fitting pairs', yLabel: 'verification accuracy', logX: true }));
  }
  if (r.curves.rank.length) {
    charts.push(lineChart([{ name: `${r.curves.source}→${r.curves.target}`, points: r.curves.rank }], { title: 'Accuracy against the rank of the map', xLabel: 'rank k', yLabel: 'verification accuracy', logX: true }));
  }
  return {
    heading: `Faces: LFW verification, ${r.models.length} networks, ${r.crosses.length} ordered pairs`,
    text: [
      `${r.pairs} pairs of pairs.txt, ${r.config.folds ? `folds ${r.config.folds.join(', ')}` : 'all folds'}; maps (${r.config.method} ${JSON.stringify(r.config.params)}) fitted on ${r.fitPairs} images of people who appear in no pair; ${facesPreprocessing(r)}.`,
      best ? `Best pair: ${best.source}→${best.target}, ${best.penaltyPoints.toFixed(2)} points below ${best.target}'s own accuracy (paper: at most 1.0 point between 4 face CNNs).` : '',
    ].filter(Boolean),
    tables: [
      {
        caption: 'Native verification (same network on both sides)',
        columns: ['model', 'dim', 'accuracy %', 'AUC', 'EER', 'TAR@FAR=1e-2', 'TAR@FAR=1e-3'],
        rows: r.models.map((m) => [m.id, m.dim, pm(m.verification.accuracy, m.verification.accuracyStd), m.verification.auc.toFixed(4), m.verification.eer.toFixed(4), m.verification.tarAtFar['1e-2'].toFixed(3), m.verification.tarAtFar['1e-3'].toFixed(3)]),
      },
      {
        caption: 'Cross-model: A mapped into B',
        columns: ['A', 'B', 'B vs B %', 'A→B vs B %', 'penalty (points)', 'both mapped %', 'AUC A→B vs B', 'rank-1 B / A→B %'],
        rows: r.crosses.map((c) => [c.source, c.target, pm(c.native.accuracy, c.native.accuracyStd), pm(c.cross.accuracy, c.cross.accuracyStd), c.penaltyPoints.toFixed(2), pct(c.bothMapped.accuracy), c.cross.auc.toFixed(4), `${pct(c.identification.native.rank1)} / ${pct(c.identification.mapped.rank1)}`]),
      },
      ...(r.curves.pairs.length ? [{ caption: `Accuracy of ${r.curves.source}→${r.curves.target} vs ${r.curves.target} against fitting pairs`, columns: ['pairs', 'accuracy %'], rows: r.curves.pairs.map(([n, a]) => [n, pct(a)]) }] : []),
      ...(r.curves.rank.length ? [{ caption: 'Against the rank of the map', columns: ['rank', 'accuracy %'], rows: r.curves.rank.map(([k, a]) => [k, pct(a)]) }] : []),
    ],
    charts,
  };
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
  return { title, subtitle: `embmap ${VERSION}, ${new Date().toISOString()}`, sections };
}

/** Writes report.json, report.md and report.html into `dir` (each atomically); returns their paths. */
export function writeReport(results: ExperimentResults, dir: string, title: string): { json: string; md: string; html: string } {
  fs.mkdirSync(dir, { recursive: true });
  const doc = reportDoc(results, title);
  const files = { json: path.join(dir, 'report.json'), md: path.join(dir, 'report.md'), html: path.join(dir, 'report.html') };
  writeFileAtomic(files.json, [Buffer.from(JSON.stringify(results, null, 2) + '\n')]);
  writeFileAtomic(files.md, [Buffer.from(renderMarkdown(doc))]);
  writeFileAtomic(files.html, [Buffer.from(renderHtml(doc))]);
  return files;
}

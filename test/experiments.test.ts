// The experiments end to end at small scale on the data that ships in demo/: numbers in range,
// the protocol's bookkeeping right, the report written in its three forms.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { CLASSIFIERS } from '../src/cli/commands/demo';
import { median, runClassification } from '../src/experiments/classification';
import { runFaces } from '../src/experiments/faces';
import { writeReport } from '../src/experiments/report';

const DEMO = path.join(__dirname, '..', '..', 'demo');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'embmap-exp-'));
process.on('exit', () => fs.rmSync(work, { recursive: true, force: true }));

test('classification: every ordered pair, retention and the median drop', async () => {
  const ids = Object.keys(CLASSIFIERS).slice(0, 2);
  const r = await runClassification({
    images: path.join(DEMO, 'imagenet'), models: ids, work, method: 'ridge', limit: 160,
    from: Object.fromEntries(ids.map((id) => [id, path.join(DEMO, 'models', CLASSIFIERS[id])])),
  });
  assert.equal(r.images, 160);
  assert.equal(r.fitImages + r.testImages, 160);
  assert.equal(r.pairs.length, 2);
  for (const m of r.models) assert.ok(m.test.top1 >= 0 && m.test.top1 <= m.test.top5 && m.test.top5 <= 1);
  for (const p of r.pairs) {
    const native = r.models.find((m) => m.id === p.target)!.test.top1;
    assert.ok(Math.abs(p.dropPoints - 100 * (native - p.mapped.top1)) < 1e-9);
    assert.ok(p.agreement >= 0 && p.agreement <= 1);
    // The head-only closed form keeps most of B's accuracy (the paper's central claim).
    assert.ok(p.weights.top1 >= 0.5 * native, `${p.source}->${p.target}: head-only ${p.weights.top1} vs native ${native}`);
  }
  assert.equal(r.medianDropPoints, median(r.pairs.map((p) => p.dropPoints)));
});

test('faces: LFW protocol on the demo pairs, maps from disjoint identities, curves, report', async () => {
  const r = await runFaces({ lfw: path.join(DEMO, 'lfw'), models: ['mobileface', 'faceapi-resnet'], work, fitImages: 120, pairCurve: [25, 120], rankCurve: [4, 16] });
  assert.equal(r.pairs, 160);
  assert.equal(r.fitPairs, 120);
  assert.equal(r.crosses.length, 2);
  const faceapi = r.models.find((m) => m.id === 'faceapi-resnet')!;
  assert.ok(faceapi.verification.accuracy > 0.75, `faceapi-resnet native accuracy ${faceapi.verification.accuracy}`);
  assert.equal(faceapi.verification.folds, 4);
  for (const c of r.crosses) {
    assert.ok(c.cross.accuracy > 0.5 && c.cross.accuracy <= 1);
    assert.ok(Math.abs(c.penaltyPoints - 100 * (c.native.accuracy - c.cross.accuracy)) < 1e-9);
    assert.ok(c.identification.mapped.queries > 0);
  }
  assert.deepEqual(r.curves.pairs.map(([n]) => n), [25, 120]);
  assert.deepEqual(r.curves.rank.map(([k]) => k), [4, 16]);
  const files = await writeReport({ faces: r }, path.join(work, 'report'), 'test');
  const json = JSON.parse(fs.readFileSync(files.json, 'utf8'));
  assert.equal(json.faces.crosses.length, 2);
  assert.match(fs.readFileSync(files.md, 'utf8'), /\| mobileface \| faceapi-resnet \|/);
  assert.equal((fs.readFileSync(files.html, 'utf8').match(/<svg /g) ?? []).length, 3);
});

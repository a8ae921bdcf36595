// The one entry point for fitting a map, used by the CLI and the experiments alike:
// fitMap(source, target, { method, ...parameters, ...protocol }).
//
// Protocol (docs/MAPS.md): by default the map is fitted on EVERY pair, and the held-out
// diagnostics come from a cross-fit on fold statistics: the pairs are dealt into `folds` seeded
// folds, each fold's statistics are subtracted from the total, the map is re-solved and scored
// on that fold from its statistics (residual, R^2) and a bounded sample of its rows (cosine,
// CKA). Folds are scored in turn until they hold `scorePairs` pairs (every fold of a smaller
// set). That costs a solve per scored fold, not passes over the data.
// `testFraction` asks for a plain split instead (the map is then fitted on the training part
// only); `validation: 'none'` skips diagnostics. The map file records which was done. With
// `groups` (e.g. the views of one image), folds and split keep every group whole: held-out scores
// are then on images the fit never saw.
import { Matrix, type FloatArray } from '../core/matrix';
import { assertInteger, assertMatrix, assertNumber, assertOneOf, describe, fail } from '../core/validate';
import { Engine } from '../engine/engine';
import { SufficientStats } from '../engine/stats';
import { crossFitDiagnostics, type FoldSample } from '../evaluate/crossfit';
import { diagnose } from '../evaluate/diagnostics';
import { foldOf, groupsOf, makeRng, permutation, rowsByFold, trainTestSplit, type Groups } from '../evaluate/split';
import { LinearMap, type MapMetadata } from '../maps/linear-map';
import type { EstimatorName, FitInfo, PairedEstimator } from './estimator';
import { LowRankEstimator } from './lowrank';
import { LstsqEstimator } from './lstsq';
import { checkParams, type ParamValue } from './params';
import { ProcrustesEstimator } from './procrustes';
import { RidgeEstimator, crossValidates, lambdaRule, scoresHead } from './ridge';
import { WeightsEstimator, loadHead, type Head } from './weights';

export type Validation = 'crossfit' | 'split' | 'none';
export const VALIDATIONS: readonly Validation[] = ['crossfit', 'split', 'none'];

/** Options of the fit protocol, apart from the estimator's own parameters. */
export interface ProtocolOptions {
  /** Default 'crossfit' ('split' when testFraction is given). */
  validation?: Validation;
  /** Folds of the cross-fit (and of ridge's lambda 'cv'); default 5. */
  folds?: number;
  /** 'split': the fraction of pairs held out, in (0, 1). */
  testFraction?: number;
  /** Seed of the fold assignment or split; default 0. */
  seed?: number;
  /**
   * One group id per pair (numbers or strings): the folds (cross-fit, ridge's k-fold lambda rules)
   * and a split keep each group whole, e.g. the views of one image. Default: each pair its own group.
   */
  groups?: ArrayLike<number | string>;
  /** What the groups are, recorded in the map file (default 'groups'). */
  groupedBy?: string;
  /** Held-out rows kept for the cosine and CKA diagnostics (at most; default 2000). */
  sampleRows?: number;
  /**
   * Pairs the cross-fit scores at least (default 10000): folds are refitted and scored in turn
   * until they hold this many; every fold when the set is smaller. Past a few thousand pairs the
   * held-out estimates barely move, while each fold costs a full solve.
   */
  scorePairs?: number;
  /** Model names recorded in the map file. */
  sourceModel?: string;
  targetModel?: string;
  engine?: Engine;
}

/** The protocol options with their defaults filled in. */
export type Protocol = ProtocolOptions & Required<Pick<ProtocolOptions, 'validation' | 'folds' | 'seed' | 'sampleRows' | 'scorePairs'>>;

const PROTOCOL_KEYS = ['validation', 'folds', 'testFraction', 'seed', 'groups', 'groupedBy', 'sampleRows', 'scorePairs', 'sourceModel', 'targetModel', 'engine'] as const;

export interface FitMapOptions extends ProtocolOptions {
  method: EstimatorName;
  /** The method's parameters, as declared in estimators/params.ts. */
  [param: string]: unknown;
}

export interface FitMapResult {
  map: LinearMap;
  /** Also stored in the map file's diagnostics. */
  warnings: string[];
}

/** Fits a map from paired rows (Matrix source and target), or from classifier heads for 'weights'. */
export async function fitMap(source: Matrix | Head, target: Matrix | Head, options: FitMapOptions): Promise<FitMapResult> {
  const { method, params, protocol } = splitOptions(options);
  if (method === 'weights') {
    if ((options.validation !== undefined && options.validation !== 'none') || options.testFraction !== undefined) {
      throw new RangeError("validation: method 'weights' fits from classifier heads, not pairs: it has no held-out diagnostics");
    }
    if (options.groups !== undefined) throw new RangeError("groups: method 'weights' fits from classifier heads, not pairs: there are no rows to group");
    const est = await new WeightsEstimator(params, { engine: protocol.engine }).fitHeads(source as Head, target as Head);
    return { map: est.toMap(metadata(protocol, { protocol: 'heads' })), warnings: [] };
  }
  assertMatrix('source', source);
  assertMatrix('target', target);
  if (target.rows !== source.rows) throw new RangeError(`target: expected ${source.rows} rows to pair with source's rows, received ${target.rows}`);
  if (source.rows < 2) throw new RangeError(`source: expected at least 2 pairs to fit a map, received ${source.rows}`);
  const Y = target.dtype === source.dtype ? target : target.astype(source.dtype);
  const groups = protocol.groups === undefined ? undefined : groupsOf('groups', protocol.groups, source.rows);
  if (protocol.validation === 'split') {
    const split = trainTestSplit(source.rows, { testFraction: protocol.testFraction, seed: protocol.seed, groups });
    if (split.test.length < 1 || split.train.length < 2) {
      throw new RangeError(
        `testFraction: ${protocol.testFraction} of ${source.rows} pairs leaves ${split.train.length} to fit and ${split.test.length} held out: ` +
          'expected at least 2 and 1',
      );
    }
    const trainX = source.takeRows(split.train), trainY = Y.takeRows(split.train);
    const folds = [await statsOf(trainX, trainY, params, protocol.engine)];
    const { total, resolved } = await totalOf(method, params, folds, protocol);
    const est = await fitTotal(method, resolved, folds, total, [], protocol.engine);
    const warnings = warningsFor(method, est.fitted.info, total, params);
    const heldOut = await diagnose(est.toMap(), source.takeRows(split.test), Y.takeRows(split.test), protocol.engine);
    const fit = {
      protocol: 'split', testFraction: protocol.testFraction, seed: protocol.seed, trainPairs: split.train.length, testPairs: split.test.length,
      ...(groups ? { groupedBy: protocol.groupedBy ?? 'groups', groups: groups.count } : {}),
    };
    return { map: est.toMap(metadata(protocol, fit, { heldOut: { ...heldOut, r2: undefined } }, warnings)), warnings };
  }
  const dealt = new FoldDealer(source.rows, source.cols, Y.cols, params, protocol, groups);
  await dealt.add(source, Y, 0);
  return fitFromFolds(method, params, dealt, protocol);
}

/** Statistics dealt into folds (FoldDealer's, or one set of statistics as `{ folds: [stats], samples: [] }`). */
export interface Dealt {
  folds: SufficientStats[];
  /** Kept rows of each scored fold (of every fold for ridge's 'cv-top1'). */
  samples: FoldSample[];
  /** The folds the cross-fit scores, the first ones (default all); the rest only add to the total. */
  scored?: number;
  /** The folds asked for, when unscored ones were dealt into one set of statistics (default folds.length). */
  asked?: number;
  /** How the folds were grouped, for the map file. */
  grouping?: Grouping;
  /** Memory nothing will read again, handed to the fit for its own statistics (FoldDealer's block buffer). */
  release?(): Float64Array | undefined;
}

/**
 * Fits from statistics already dealt into folds (streaming: see estimators/streaming.ts), the
 * map on their total, diagnostics by cross-fit when there is more than one fold.
 */
export async function fitFromFolds(method: EstimatorName, params: Record<string, ParamValue>, dealt: Dealt, protocol: ProtocolOptions): Promise<FitMapResult> {
  const { folds, samples, grouping } = dealt;
  // The dealer's block buffer holds the total, then the cross-fit's training statistics, as far as it goes.
  const room = dealt.release?.(), need = SufficientStats.matrixLength(folds[0].p, folds[0].q, folds[0].yty !== null);
  const [forTotal, forCrossFit] = room && room.length >= need ? [room.subarray(0, need), room.subarray(need)] : [];
  const { total, resolved } = await totalOf(method, params, folds, protocol, forTotal);
  const fitAll = (engine?: Engine) => fitTotal(method, resolved, folds, total, samples, engine);
  const result = (est: PairedEstimator, fit: Record<string, unknown>, extra: Record<string, unknown> = {}): FitMapResult => {
    const warnings = warningsFor(method, est.fitted.info, total, params);
    return { map: est.toMap(metadata(protocol, fit, extra, warnings)), warnings };
  };
  if (folds.length < 2 || protocol.validation === 'none') return result(await fitAll(protocol.engine), { protocol: 'none', pairs: total.count, ...grouping });
  // Ridge's lambda, when a rule chooses it, is chosen once, on all the pairs, and reused in the
  // folds, which wait for it. Otherwise the map on all the pairs is solved beside the folds' maps
  // (crossFitDiagnostics' `alongside`: two solves on a thread each outrun two on both threads).
  const chosen = method === 'ridge' && typeof resolved.lambda !== 'number';
  let est = chosen ? await fitAll(protocol.engine) : undefined;
  const lambda = est?.fitted.info.lambda;
  const foldParams = typeof lambda === 'number' ? { ...resolved, lambda } : resolved;
  const scored = folds.slice(0, dealt.scored ?? folds.length);
  const refit = (train: SufficientStats, engine: Engine) => makeEstimator(method, foldParams, engine).fitStats(train);
  const alongside = est ? undefined : async (engine: Engine) => void (est = await fitAll(engine));
  const heldOut = await crossFitDiagnostics(total, scored, samples, refit, { engine: protocol.engine, memory: forCrossFit, alongside });
  const asked = dealt.asked ?? folds.length;
  const fit = {
    protocol: 'crossfit', folds: asked, ...(scored.length < asked ? { scoredFolds: scored.length, scorePairs: protocol.scorePairs } : {}),
    seed: protocol.seed, mapPairs: total.count, ...grouping,
    ...(method === 'ridge' ? { foldLambda: 'the lambda chosen on all pairs' } : {}),
  };
  return result(est!, fit, { heldOut });
}

/** Validates the options: the method's parameters against the declaration, then the protocol. */
export function splitOptions(options: FitMapOptions): { method: EstimatorName; params: Record<string, ParamValue>; protocol: Protocol } {
  if (options === null || typeof options !== 'object') fail(TypeError, 'options', '{ method, ...parameters }', options);
  const { method, ...rest } = options;
  const raw: Record<string, unknown> = { ...rest };
  for (const k of PROTOCOL_KEYS) delete raw[k];
  const params = checkParams(method, raw);
  const validation = options.validation ?? (options.testFraction !== undefined ? 'split' : 'crossfit');
  assertOneOf('validation', validation, VALIDATIONS);
  const folds = options.folds ?? 5;
  assertInteger('folds', folds, 2, 1000);
  const seed = options.seed ?? 0;
  assertInteger('seed', seed, 0);
  const sampleRows = options.sampleRows ?? 2000;
  assertInteger('sampleRows', sampleRows, 0);
  const scorePairs = options.scorePairs ?? 10000;
  assertInteger('scorePairs', scorePairs, 1);
  if (options.scorePairs !== undefined && validation !== 'crossfit') {
    throw new RangeError(`scorePairs: only with validation 'crossfit' (the pairs the cross-fit scores), received validation '${validation}'`);
  }
  if (validation === 'split') {
    if (options.testFraction === undefined) throw new TypeError("testFraction: required by validation 'split', received undefined");
    assertNumber('testFraction', options.testFraction, 0, 1);
    if (options.testFraction <= 0 || options.testFraction >= 1) fail(RangeError, 'testFraction', 'a number in (0, 1)', options.testFraction);
  } else if (options.testFraction !== undefined) {
    throw new RangeError(`testFraction: only with validation 'split', received validation '${validation}'`);
  }
  for (const k of ['sourceModel', 'targetModel', 'groupedBy'] as const) {
    if (options[k] !== undefined && typeof options[k] !== 'string') fail(TypeError, k, 'a string', options[k]);
  }
  return { method: method as EstimatorName, params, protocol: { ...options, validation, folds, seed, sampleRows, scorePairs } };
}

/** A paired estimator from checked parameters (see params.ts). */
export function makeEstimator(method: EstimatorName, params: Record<string, ParamValue>, engine?: Engine): PairedEstimator {
  const opts = { engine };
  switch (method) {
    case 'lstsq': return new LstsqEstimator(params, opts);
    case 'ridge': return new RidgeEstimator(params, opts);
    case 'procrustes': return new ProcrustesEstimator(params, opts);
    case 'lowrank': return new LowRankEstimator(params as { rank: number }, opts);
    default: return fail(TypeError, 'method', "one of 'lstsq', 'ridge', 'procrustes', 'lowrank' (paired rows)", method);
  }
}

/** How the folds were grouped, for the map file: what the groups are, how many, and leave-one-group-out when there were fewer than the folds asked for. */
export interface Grouping {
  groupedBy: string;
  groups: number;
  leaveOneGroupOut?: true;
}

/**
 * Deals rows into seeded folds as they stream by (whole groups with `groups`), keeping a bounded
 * seeded sample of each scored fold's rows, drawn uniformly from the whole fold: the first rows
 * would all come from one source when the file is ordered by source (cv-top1 scores these rows).
 * Folds the cross-fit will not score share one set of statistics, unless ridge's k-fold lambda
 * rules need each fold.
 */
export class FoldDealer implements Dealt {
  readonly folds: SufficientStats[];
  readonly samples: FoldSample[];
  readonly scored: number;
  readonly asked: number;
  readonly grouping?: Grouping;
  private readonly fold: Uint16Array | null;
  private readonly group?: Int32Array;
  /** 1 for the rows kept in their fold's sample. */
  private readonly sampled: Uint8Array;
  /** Rows of each fold's sample filled so far. */
  private readonly filled: number[];
  private workspace?: Float64Array;
  /** Set once the block buffer went to the fit (release). */
  private released = false;

  constructor(rows: number, p: number, q: number, params: Record<string, ParamValue>, protocol: Protocol, groups?: Groups) {
    // Fewer pairs (groups) than folds: one per fold (leave-one-out). Without diagnostics, folds
    // only where ridge chooses lambda by cross-validation.
    const units = groups ? groups.count : rows;
    const rule = lambdaRule(params), everyFold = crossValidates(rule);
    const needsFolds = protocol.validation !== 'none' || everyFold;
    const k = needsFolds ? Math.min(protocol.folds, units) : 1;
    if (groups && needsFolds) {
      if (units < 2) throw new RangeError('groups: expected at least 2 groups (folds hold whole groups out), received 1 (every pair in one group)');
      this.grouping = { groupedBy: protocol.groupedBy ?? 'groups', groups: units, ...(k > 1 && k < protocol.folds ? { leaveOneGroupOut: true as const } : {}) };
    }
    this.fold = k > 1 ? foldOf(rows, k, protocol.seed, groups) : null;
    this.group = groups?.group;
    this.asked = k;
    const byFold = this.fold ? rowsByFold(this.fold, k) : [];
    // Folds in turn until they hold scorePairs pairs.
    let scored = 0;
    for (let pairs = 0; scored < byFold.length && pairs < protocol.scorePairs; scored++) pairs += byFold[scored].length;
    this.scored = protocol.validation === 'crossfit' ? scored : 0;
    // Ridge's k-fold lambda rules need every fold's statistics.
    const merged = this.scored < k - 1 && !everyFold;
    if (merged) for (let i = 0; i < rows; i++) this.fold![i] = Math.min(this.fold![i], this.scored);
    const opts = { precision: params.precision as 'float64' | 'float32' | undefined, engine: protocol.engine };
    this.folds = Array.from({ length: merged ? this.scored + 1 : k }, () => new SufficientStats(p, q, opts));
    // cv-top1 scores every fold's kept rows, the cross-fit the scored folds'.
    const sampledFolds = rule === 'cv-top1' ? k : this.scored;
    this.sampled = new Uint8Array(this.fold ? rows : 0);
    const perFold = Math.ceil(protocol.sampleRows / Math.max(sampledFolds, 1)), rng = makeRng(protocol.seed);
    const kept = byFold.slice(0, sampledFolds).map((members) => {
      for (const i of permutation(members.length, rng).subarray(0, perFold)) this.sampled[members[i]] = 1;
      return Math.min(perFold, members.length);
    });
    // Float64 matrices of the kept rows, filled in place as the rows stream by.
    this.samples = kept.map((n) => ({ X: Matrix.zeros(n, p, 'float64'), Y: Matrix.zeros(n, q, 'float64'), ...(groups ? { groups: [] } : {}) }));
    this.filled = new Array<number>(kept.length).fill(0);
  }

  /**
   * Adds rows start .. start + X.rows of the whole set: each fold's statistics take their rows
   * of the chunk in place (no copy). A NaN or infinity is an error naming `names` (the inputs
   * as the caller knows them) and the row of the whole set.
   */
  async add(X: Matrix, Y: Matrix, start: number, names: [string, string] = ['source', 'target']): Promise<void> {
    if (this.released) throw new RangeError('add: these folds were already handed to a fit (release): deal the rows into a new FoldDealer');
    if (!this.fold) {
      await this.folds[0].update(X, Y, { names, rowOffset: start, workspace: this.workspaceFor(X.cols, Y.cols, X.rows) });
      return;
    }
    const byFold = rowsByFold(this.fold, this.folds.length, start, start + X.rows);
    const workspace = this.workspaceFor(X.cols, Y.cols, Math.max(...byFold.map((r) => r.length)));
    for (const [f, rows] of byFold.entries()) {
      if (rows.length === 0) continue;
      await this.folds[f].update(X, Y, { rows, names, rowOffset: start, workspace });
      const s = this.samples[f]; // undefined for a fold with no kept rows, whose rows are never sampled
      for (const r of rows) {
        if (!this.sampled[start + r]) continue;
        const i = this.filled[f]++;
        s.X.row(i).set(X.row(r));
        s.Y.row(i).set(Y.row(r));
        if (this.group) s.groups!.push(this.group[start + r]);
      }
    }
  }

  /** The block buffer, for the fit to keep its own statistics in (its pages are touched already); no rows are added after. */
  release(): Float64Array | undefined {
    this.released = true;
    const w = this.workspace;
    this.workspace = undefined;
    return w;
  }

  // One block buffer for every chunk and fold, grown when a chunk needs more: a fresh one per
  // streamed chunk cost its pages' first touch each time.
  private workspaceFor(p: number, q: number, rows: number): Float64Array {
    const need = SufficientStats.workspaceLength(p, q, rows);
    if (!this.workspace || this.workspace.length < need) this.workspace = SufficientStats.workspace(p, q, rows);
    return this.workspace;
  }
}

async function statsOf(X: Matrix, Y: Matrix, params: Record<string, ParamValue>, engine?: Engine): Promise<SufficientStats> {
  const s = new SufficientStats(X.cols, Y.cols, { precision: params.precision as 'float64' | 'float32' | undefined, engine });
  return s.update(X, Y);
}

// The total of the folds (read only from here on: one fold, without diagnostics or in a split, is
// its own total, without a p x p copy) and the parameters as the fit takes them (ridge's prior resolved).
async function totalOf(method: EstimatorName, params: Record<string, ParamValue>, folds: SufficientStats[], protocol: ProtocolOptions, memory?: Float64Array) {
  const total = folds.length === 1 ? folds[0] : SufficientStats.sum(folds, { memory });
  if (total.count < 2) throw new RangeError(`source: expected at least 2 pairs to fit a map, received ${total.count}`);
  const resolved = method === 'ridge' ? await resolvePrior(params, total.p, total.q, protocol.engine) : params;
  return { total, resolved };
}

// The map on the total; ridge's cross-validation rules choose lambda on these same folds.
async function fitTotal(
  method: EstimatorName, resolved: Record<string, ParamValue>, folds: SufficientStats[], total: SufficientStats, samples: FoldSample[], engine?: Engine,
): Promise<PairedEstimator> {
  const est = makeEstimator(method, resolved, engine);
  if (est instanceof RidgeEstimator && est.crossValidates) {
    if (folds.length < 2) throw new RangeError(`lambda: '${est.params.lambda}' needs folds: use the default cross-fit validation or 'none', not a split`);
    // 'cv-top1' scores the rows each fold kept (all of them up to sampleRows, a uniform sample past that).
    await est.fitFolds(folds, samples);
  } else {
    await est.fitStats(total);
  }
  return est;
}

/**
 * Ridge's prior as { weight, bias, provenance }: a LinearMap or { weight, bias? }, a map file, or
 * 'weights', the closed form from the two classifier heads (sourceHead, targetHead: Head or head
 * file); the bias, when there is one, is shrunk toward with the weight (ridge.ts).
 * The target head, loaded, also goes to ridge as the metric of the lambda rules 'cv-logits', 'cv-top1'.
 */
async function resolvePrior(params: Record<string, ParamValue>, p: number, q: number, engine?: Engine): Promise<Record<string, ParamValue>> {
  const { prior, sourceHead, targetHead, ...rest } = params;
  if (prior !== 'weights' && sourceHead !== undefined) {
    throw new RangeError(`sourceHead: only with prior 'weights' (the heads give the prior), received prior ${describe(prior)}`);
  }
  const head = (name: string, h: ParamValue | undefined, dim: number, side: string, why: string): Head => {
    if (h === undefined) throw new TypeError(`${name}: required by ${why} (the ${side} network's classifier head), received undefined`);
    const out = typeof h === 'string' ? loadHead(h, name) : (h as Head);
    if (out.W.cols !== dim) throw new RangeError(`${name}: expected a head over the ${side}'s ${dim}-dimensional embeddings (classes x ${dim}), received classes x ${out.W.cols}`);
    return out;
  };
  const rule = lambdaRule(params);
  const why = prior === 'weights' ? "prior 'weights'" : `lambda '${rule}'`;
  const needed = prior === 'weights' || scoresHead(rule);
  if (targetHead !== undefined && !needed) {
    throw new RangeError(`targetHead: only with prior 'weights' or lambda 'cv-logits' or 'cv-top1' (what reads it), received lambda ${describe(rule)}`);
  }
  const hB = targetHead !== undefined || needed ? head('targetHead', targetHead, q, 'target', why) : undefined;
  if (hB) rest.targetHead = hB;
  if (prior === undefined) return rest;
  let weight: Matrix, bias: FloatArray | undefined, provenance: Record<string, unknown>;
  if (prior === 'weights') {
    const hA = head('sourceHead', sourceHead, p, 'source', why);
    if (hA.W.rows !== hB!.W.rows) {
      throw new RangeError(`targetHead: expected ${hA.W.rows} classes like sourceHead (a 'weights' prior needs classifiers over the same classes), received ${hB!.W.rows}`);
    }
    const est = await new WeightsEstimator({}, { engine }).fitHeads(hA, hB!);
    ({ weight, bias } = est.fitted);
    const named = (h: ParamValue | undefined) => (typeof h === 'string' ? h : 'in memory');
    provenance = { from: 'weights', sourceHead: named(sourceHead), targetHead: named(targetHead), classes: hA.W.rows, headResidual: est.fitted.info.headResidual };
  } else {
    const map = typeof prior === 'string' ? LinearMap.load(prior, { engine }) : prior;
    if (map instanceof LinearMap) {
      const m = map.metadata;
      weight = map.weight();
      bias = map.bias();
      provenance = { from: typeof prior === 'string' ? prior : 'in memory', estimator: m.estimator, source: m.source.model, target: m.target.model, pairs: m.pairs, created: m.created };
    } else {
      // { weight, bias? }: without a bias, the bias is refitted from the means (ridge.ts).
      ({ weight, bias } = map as { weight: Matrix; bias?: FloatArray });
      provenance = { from: 'in memory', estimator: 'unknown' };
    }
  }
  if (weight.rows !== p || weight.cols !== q) {
    throw new RangeError(`prior: expected a ${p}x${q} map (source dim x target dim of the pairs), received a ${weight.rows}x${weight.cols} map${typeof prior === 'string' ? ` (${prior})` : ''}`);
  }
  return { ...rest, prior: { weight, ...(bias !== undefined ? { bias } : {}), provenance } };
}

/** Under-determined (fewer pairs than the source dimension needs) and rank-deficient fits, said in words. */
function warningsFor(method: EstimatorName, info: FitInfo, total: SufficientStats, params: Record<string, ParamValue>): string[] {
  const out: string[] = [];
  const need = total.p + (params.intercept === false ? 0 : 1);
  if (total.count < need) {
    const what =
      method === 'ridge' ? `the regularisation chose lambda = ${Number(info.lambda).toPrecision(3)} (${info.selection})` :
      method === 'lowrank' ? `the rank-${info.rank} map rests on ${params.lambda === 0 ? 'the minimum-norm solution' : `lambda = ${params.lambda}`}` :
      method === 'procrustes' ? 'the rotation is not determined on the directions the pairs do not span' :
      `the minimum-norm solution was returned (rank ${info.rank})`;
    out.push(`under-determined: ${total.count} pairs for a ${total.p}-dimensional source (${need} needed to determine the map): ${what}`);
  } else if (info.rankDeficient) {
    // float32 products resolve eigenvalues of X^T X only down to ~p * 1.2e-7 of the largest: an ill-conditioned source looks rank-deficient.
    const why = total.precision === 'float32' && total.inputDType === 'float32'
      ? "or, with precision 'float32', ill-conditioned beyond what float32 products resolve: the default float64 products give the full-rank map"
      : 'duplicated or constant columns?';
    out.push(`rank-deficient: the source spans ${info.rank} of ${total.p} dimensions (${why}): the minimum-norm map was returned`);
  }
  return out;
}

function metadata(protocol: ProtocolOptions, fit: Record<string, unknown>, extra: Record<string, unknown> = {}, warnings: string[] = []): Partial<MapMetadata> {
  return {
    source: { model: protocol.sourceModel ?? 'unknown', dim: 0 },
    target: { model: protocol.targetModel ?? 'unknown', dim: 0 },
    diagnostics: { fit, ...extra, ...(warnings.length ? { warnings } : {}) },
  };
}


// The single-process extraction pass: the plan (plan.ts) run from where its checkpoint says
// (embed.ts), batches checkpointed as they finish, and the final .npy + .ids.tsv outputs written
// atomically only when every image is done. With `align`, faces are detected and aligned first
// (src/faces, cached) and the networks see the aligned crops.
import * as path from 'node:path';
import type { AlignSummary } from '../faces/stage';
import type { Provider } from '../onnx/session-options';
import { Checkpoint, type SkippedImage } from './checkpoint';
import { DecodePool } from './decode-pool';
import { RangeEmbedder } from './embed';
import { type ExtractOptions, type ExtractPlan, planExtraction, writeOutputs } from './plan';
import { Progress } from './progress';
import type { ModelRunner } from './runner';

export type { ExtractOptions, ExtractTarget } from './plan';

export interface ExtractSummary {
  /** Images in the dataset. */
  total: number;
  /** Rows in each output (total minus skipped). */
  rows: number;
  /** Every image skipped, this run and earlier ones. */
  skipped: SkippedImage[];
  /** Items already done by earlier runs when this one started (0 when not resumed). */
  resumedFrom: number;
  /** Items this run decoded and ran, and in how many batches. */
  computed: number;
  batches: number;
  /** Wall time of the whole call, and the part spent before the first image (models loaded and checked, checkpoint opened). */
  seconds: number;
  setupSeconds: number;
  /** computed / (seconds - setupSeconds): the processing rate. */
  imagesPerSecond: number;
  models: ExtractedModel[];
  checkpoint: string;
  /** With align: the alignment stage's counts and every image without a usable face. */
  align?: AlignSummary;
}

export interface ExtractedModel {
  id: string;
  source: string;
  provider: Provider;
  fallback?: string;
  origins: Record<string, string>;
  out: string;
  logits?: string;
  dim: number;
  classes?: number;
}

/** Runs the pass described by `options`; see the file comment. Resumes a matching checkpoint. */
export async function extract(options: ExtractOptions): Promise<ExtractSummary> {
  const t0 = Date.now();
  const plan = await planExtraction(options);
  const total = plan.dataset.items.length;
  const checkpointDir = `${path.resolve(plan.targets[0].out)}.partial`;
  const runners: ModelRunner[] = [];
  let pool: DecodePool | undefined;
  let checkpoint: Checkpoint | undefined;
  try {
    // The first batches decode while the sessions are created: from where the checkpoint says, if it holds.
    const from = options.restart ? 0 : Checkpoint.recordedDone(checkpointDir);
    if (from < total) pool = new DecodePool(plan.workers);
    const range = pool ? new RangeEmbedder(plan, pool, from, total) : undefined;
    for (const p of plan.prepared) runners.push(await p.open({ device: options.device, threads: options.threads }));
    checkpoint = Checkpoint.open(checkpointDir, plan.fingerprint, plan.dims, total, { restart: options.restart });
    const resumedFrom = checkpoint.progress.done;
    if (resumedFrom !== from) throw new Error(`${checkpointDir}: the checkpoint changed while this run started (another process writing it?); run again`);
    const setupSeconds = (Date.now() - t0) / 1000;
    const progress = options.progress ? new Progress(options.progress, total, resumedFrom, { intervalMs: options.progressIntervalMs }) : undefined;
    const cp = checkpoint;
    await range?.run(runners, ({ end, n, outputs, skipped }) => {
      cp.append(end, n, outputs, skipped);
      progress?.update(end);
    });
    await checkpoint.flush();
    progress?.finish();

    // Assemble: the checkpoint's rows, named by the ids of the images not skipped.
    const record = checkpoint.progress;
    writeOutputs(plan, record.skipped, record.rows, (k) => cp.read(k), checkpoint.dir);
    const run = record.runs[record.runs.length - 1];
    const seconds = (Date.now() - t0) / 1000;
    const summary: ExtractSummary = {
      total,
      rows: record.rows,
      skipped: record.skipped,
      resumedFrom,
      computed: run.computed,
      batches: run.batches,
      seconds,
      setupSeconds,
      imagesPerSecond: seconds > setupSeconds ? run.computed / (seconds - setupSeconds) : 0,
      models: describeModels(plan, runners),
      checkpoint: checkpoint.dir,
      ...(plan.align ? { align: plan.align } : {}),
    };
    await checkpoint.remove();
    checkpoint = undefined;
    return summary;
  } finally {
    await pool?.close();
    await checkpoint?.close();
    for (const r of runners) await r.close();
  }
}

/** What each target ran on and wrote, for summaries. */
export function describeModels(plan: ExtractPlan, runners: readonly { provider: Provider; fallback?: string }[]): ExtractedModel[] {
  return plan.prepared.map((p, m) => ({
    id: p.loaded.card.id,
    source: p.loaded.source,
    provider: runners[m].provider,
    ...(runners[m].fallback ? { fallback: runners[m].fallback } : {}),
    origins: p.loaded.origins,
    out: plan.targets[m].out,
    ...(plan.targets[m].logits ? { logits: plan.targets[m].logits } : {}),
    dim: p.embeddingDim,
    ...(p.classes !== undefined ? { classes: p.classes } : {}),
  }));
}

// Running a range of a plan: images decoded by worker threads a few batches ahead of inference,
// each image decoded once for all models (once per distinct input spec), every model's embeddings
// and logits captured from the same run, each batch handed to a sink (the checkpoint of the
// single-process pass, or a shard's buffers in a cluster worker).
import type { SkippedImage } from './checkpoint';
import type { DecodePool, DecodedBatch } from './decode-pool';
import type { DecodeItem, ExtractPlan, ModelPlan } from './plan';
import type { ModelRunner } from './runner';

/** The part of a plan a range needs: the models, the images, how to batch them. */
export interface RangePlan extends Omit<ModelPlan, 'prepared'> {
  dataset: { items: readonly { id: string; path: string }[] };
  items: readonly DecodeItem[];
  batch: number;
  prefetch: number;
  strict: boolean;
  /** The decode limit (default MAX_PIXELS). */
  maxPixels?: number;
}

export interface EmbeddedBatch {
  /** Dataset position after the batch. */
  end: number;
  /** Rows in each output (the batch's images not skipped). */
  n: number;
  /** n rows of each output, in the plan's output order. */
  outputs: Float32Array[];
  skipped: SkippedImage[];
}

export class RangeEmbedder {
  private readonly plan: RangePlan;
  private readonly pool: DecodePool;
  private readonly starts: number[] = [];
  private readonly end: number;
  private readonly decoding = new Map<number, Promise<DecodedBatch>>();
  private readonly spare: ArrayBuffer[][] = [];
  private submitted = 0;

  /** Starts decoding the first batches of [start, end) at once, so they overlap opening the models. */
  constructor(plan: RangePlan | ExtractPlan, pool: DecodePool, start: number, end: number) {
    this.plan = plan;
    this.pool = pool;
    this.end = end;
    for (let s = start; s < end; s += plan.batch) this.starts.push(s);
    while (this.submitted < this.starts.length && this.submitted <= plan.prefetch) this.submit(this.submitted++);
  }

  /** Batches in the range. */
  get batches(): number {
    return this.starts.length;
  }

  /** Runs every batch through `runners` (the plan's models, opened), in order, into `sink`. */
  async run(runners: ModelRunner[], sink: (batch: EmbeddedBatch) => void): Promise<void> {
    const { plan } = this;
    for (let k = 0; k < this.starts.length; k++) {
      // Keep `prefetch` batches decoding while this one runs.
      while (this.submitted < this.starts.length && this.submitted <= k + plan.prefetch) this.submit(this.submitted++);
      const decoded = await this.decoding.get(k)!;
      this.decoding.delete(k);
      const start = this.starts[k];
      const end = Math.min(start + plan.batch, this.end);
      const skipped = decoded.failures.map(({ index, reason }) => {
        const item = plan.dataset.items[start + index];
        return { index: start + index, id: item.id, path: item.path, reason };
      });
      if (plan.strict && skipped.length) {
        throw new Error(`${skipped[0].path}: ${skipped[0].reason} (--strict: stopping; ${start} images done are kept in the checkpoint)`);
      }
      const n = decoded.kept.length;
      const outputs: Float32Array[] = [];
      if (n > 0) {
        for (let m = 0; m < runners.length; m++) {
          const input = new Float32Array(decoded.buffers[plan.specOf[m]], 0, n * plan.sizes[plan.specOf[m]]);
          const result = await runners[m].run(input, n);
          outputs.push(result.embeddings, ...(result.logits ? [result.logits] : []));
        }
      } else {
        plan.dims.forEach(() => outputs.push(new Float32Array(0)));
      }
      sink({ end, n, outputs, skipped });
      this.spare.push(decoded.buffers);
    }
  }

  private submit(k: number): void {
    const { plan } = this;
    const start = this.starts[k];
    const items = plan.items.slice(start, Math.min(start + plan.batch, this.end));
    const buffers = this.spare.pop() ?? plan.sizes.map((n) => new ArrayBuffer(plan.batch * n * 4));
    // Images known to be skipped (no aligned face) are not decoded; they come back as failures with their reason.
    const wanted = items.flatMap((it, j) => (it.unreadable === undefined ? [j] : []));
    const known = items.flatMap((it, j) => (it.unreadable === undefined ? [] : [{ index: j, reason: it.unreadable }]));
    const views = items.some((it) => it.view) ? wanted.map((j) => items[j].view ?? null) : undefined;
    this.decoding.set(k, this.pool.decode(wanted.map((j) => items[j].path), plan.specs, buffers, plan.maxPixels, views).then((d) => ({
      ...d,
      failures: [...d.failures.map((f) => ({ index: wanted[f.index], reason: f.reason })), ...known].sort((a, b) => a.index - b.index),
    })));
  }
}

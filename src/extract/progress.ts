// Progress for long extractions: a redrawn bar with rate and ETA on a terminal, plain lines at
// intervals when the stream is a file or pipe (logs stay readable, no carriage returns).

export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export class Progress {
  private readonly stream: ProgressStream;
  private readonly total: number;
  private readonly start: number;
  private readonly t0 = Date.now();
  private readonly intervalMs: number;
  private lastLine: number;
  private done: number;

  /** `start` items were done before this run (resumed): the rate counts this run's items only. */
  constructor(stream: ProgressStream, total: number, start: number, options: { intervalMs?: number } = {}) {
    this.stream = stream;
    this.total = total;
    this.start = start;
    this.done = start;
    this.intervalMs = options.intervalMs ?? (stream.isTTY ? 100 : 5000);
    // A terminal shows the bar at once; a log gets its first line after one interval.
    this.lastLine = stream.isTTY ? 0 : this.t0;
  }

  update(done: number): void {
    this.done = done;
    const now = Date.now();
    if (now - this.lastLine < this.intervalMs) return;
    this.lastLine = now;
    this.draw(false);
  }

  finish(): void {
    this.draw(true);
  }

  /** "1200/5000 images (24%) 35.1 img/s ETA 1m48s" */
  line(): string {
    const seconds = (Date.now() - this.t0) / 1000;
    const rate = seconds > 0 ? (this.done - this.start) / seconds : 0;
    const left = this.total - this.done;
    const eta = rate > 0 ? formatDuration(left / rate) : '?';
    const pct = this.total ? Math.floor((100 * this.done) / this.total) : 100;
    return `${this.done}/${this.total} images (${pct}%) ${rate.toFixed(1)} img/s ${left > 0 ? `ETA ${eta}` : `in ${formatDuration(seconds)}`}`;
  }

  private draw(final: boolean): void {
    const text = this.line();
    if (!this.stream.isTTY) {
      this.stream.write(`${text}\n`);
      return;
    }
    const width = Math.max(10, Math.min(40, (this.stream.columns ?? 80) - text.length - 4));
    const filled = this.total ? Math.round((width * this.done) / this.total) : width;
    this.stream.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${text}\x1b[K${final ? '\n' : ''}`);
  }
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

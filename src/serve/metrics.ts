// Counters and histograms rendered as Prometheus text (exposition format 0.0.4). A handful of
// series with fixed, server-chosen label values (route patterns, status codes, configured map
// names: never raw client input), so no client library is needed.

type Labels = Record<string, string>;

const escapeLabel = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
const labelText = (labels: Labels) => {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
};
// Series are keyed by their label text, which also renders them.
const keyOf = labelText;

interface Metric {
  render(): string[];
}

export class Counter implements Metric {
  readonly #values = new Map<string, number>();
  constructor(readonly name: string, readonly help: string) {}

  inc(labels: Labels = {}, by = 1): void {
    const k = keyOf(labels);
    this.#values.set(k, (this.#values.get(k) ?? 0) + by);
  }

  render(): string[] {
    const out = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const [k, v] of this.#values) out.push(`${this.name}${k} ${v}`);
    return out;
  }
}

export class Gauge implements Metric {
  constructor(readonly name: string, readonly help: string, readonly read: () => number) {}

  render(): string[] {
    return [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`, `${this.name} ${this.read()}`];
  }
}

export class Histogram implements Metric {
  readonly #series = new Map<string, { labels: Labels; counts: Float64Array; sum: number; count: number }>();
  /** `buckets`: ascending upper bounds; +Inf is implied. */
  constructor(readonly name: string, readonly help: string, readonly buckets: readonly number[]) {}

  observe(value: number, labels: Labels = {}): void {
    const k = keyOf(labels);
    let s = this.#series.get(k);
    if (!s) this.#series.set(k, (s = { labels, counts: new Float64Array(this.buckets.length), sum: 0, count: 0 }));
    // Per-bucket (not cumulative) counts; render() accumulates.
    const i = this.buckets.findIndex((b) => value <= b);
    if (i >= 0) s.counts[i]++;
    s.sum += value;
    s.count++;
  }

  render(): string[] {
    const out = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const s of this.#series.values()) {
      let acc = 0;
      this.buckets.forEach((b, i) => {
        acc += s.counts[i];
        out.push(`${this.name}_bucket${labelText({ ...s.labels, le: String(b) })} ${acc}`);
      });
      out.push(`${this.name}_bucket${labelText({ ...s.labels, le: '+Inf' })} ${s.count}`);
      out.push(`${this.name}_sum${labelText(s.labels)} ${s.sum}`);
      out.push(`${this.name}_count${labelText(s.labels)} ${s.count}`);
    }
    return out;
  }
}

export class Registry {
  readonly #metrics: Metric[] = [];

  add<M extends Metric>(m: M): M {
    this.#metrics.push(m);
    return m;
  }

  render(): string {
    return this.#metrics.flatMap((m) => m.render()).join('\n') + '\n';
  }
}

/** The map service's metrics. */
export function serverMetrics(inflight: () => number) {
  const registry = new Registry();
  const powers = (n: number) => Array.from({ length: n }, (_, i) => 2 ** i);
  return {
    registry,
    requests: registry.add(new Counter('embmap_http_requests_total', 'HTTP requests answered, by route pattern, method and status code')),
    latency: registry.add(
      new Histogram('embmap_http_request_duration_seconds', 'Time from request start to response end, by route pattern',
        [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]),
    ),
    vectors: registry.add(new Counter('embmap_vectors_mapped_total', 'Vectors mapped, by map')),
    batchRows: registry.add(new Histogram('embmap_batch_rows', 'Rows per GEMM (requests micro-batched together), by map', powers(17))),
    batchRequests: registry.add(new Histogram('embmap_batch_requests', 'Requests per GEMM, by map', powers(11))),
    inflight: registry.add(new Gauge('embmap_http_requests_in_flight', 'Requests received and not yet answered', inflight)),
    rss: registry.add(new Gauge('process_resident_memory_bytes', 'Resident set size of the server process', () => process.memoryUsage.rss())),
    heap: registry.add(new Gauge('nodejs_heap_used_bytes', 'V8 heap in use', () => process.memoryUsage().heapUsed)),
  };
}

export type ServerMetrics = ReturnType<typeof serverMetrics>;

// The report's charts as Vega-Lite specifications (data), rendered to static SVG by Vega in Node
// (renderer 'none': no DOM, no canvas, no network). vega and vega-lite are ES modules with
// top-level await, loaded only when a report is rendered, so the library's core never pays for them.

export interface Series {
  name: string;
  points: [number, number][];
  /** Drawn dashed: not measured (e.g. a trend's extrapolation). */
  dashed?: boolean;
}

/** A chart: its title (also the SVG's accessible name) and the Vega-Lite spec that draws it. */
export interface Chart {
  title: string;
  spec: Record<string, unknown>;
}

export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  logX?: boolean;
  xDomain?: [number, number];
  yDomain?: [number, number];
  /** A dashed horizontal line, named in the legend (e.g. the target network's own accuracy). */
  reference?: { name: string; y: number };
}

const FONT = 'system-ui, -apple-system, Segoe UI, Roboto, sans-serif';
// No truncated labels anywhere: Vega's default cuts axis and legend labels at 180 px.
const CONFIG = {
  font: FONT,
  title: { anchor: 'start', fontSize: 14 },
  axis: { labelLimit: 0, titleLimit: 0, labelFontSize: 11, titleFontSize: 12 },
  legend: { labelLimit: 0, titleLimit: 0, labelFontSize: 11, orient: 'bottom', direction: 'vertical' },
  view: { stroke: '#ccc' },
};

/** Lines over x (log or linear, nice ticks), with an optional dashed reference line. */
export function lineChart(series: Series[], o: LineChartOptions): Chart {
  const keep = ([x, y]: [number, number]) => Number.isFinite(x) && Number.isFinite(y) && (!o.logX || x > 0)
    && (!o.xDomain || (x >= o.xDomain[0] && x <= o.xDomain[1]));
  const values = series.flatMap((s) => s.points.filter(keep).map(([x, y]) => ({ series: s.name, x, y, ...(s.dashed ? { dashed: true } : {}) })));
  const dash = series.some((s) => s.dashed)
    ? { strokeDash: { field: 'dashed', type: 'nominal', legend: null, scale: { domain: [false, true], range: [[1, 0], [6, 4]] } } }
    : {};
  const names = [...series.map((s) => s.name), ...(o.reference ? [o.reference.name] : [])];
  const color = { type: 'nominal', title: null, scale: { domain: names } };
  const y = { type: 'quantitative', title: o.yLabel, scale: { zero: false, nice: true, ...(o.yDomain ? { domain: o.yDomain } : {}) } };
  // Points only where they are measurements worth seeing (not on a dense ROC).
  const dots = Math.max(...series.map((s) => s.points.length)) <= 30;
  const layers: Record<string, unknown>[] = [{
    data: { values },
    mark: { type: 'line', point: dots ? { size: 24 } : false, clip: true, strokeWidth: 2 },
    encoding: {
      x: {
        field: 'x', type: 'quantitative', title: o.xLabel,
        // A log axis keeps the data's extent (nice would widen 25..250 to 10..1000); a given domain is kept exactly.
        scale: { type: o.logX ? 'log' : 'linear', nice: !o.logX && !o.xDomain, ...(o.xDomain ? { domain: o.xDomain } : {}) },
        axis: { format: '~g', ...(o.logX ? { values: logTicks(o.xDomain ?? extent(values.map((v) => v.x))), grid: true } : {}) },
      },
      y: { ...y, field: 'y' },
      color: { ...color, field: 'series' },
      ...dash,
    },
  }];
  if (o.reference) {
    layers.push({
      data: { values: [{ y: o.reference.y }] },
      mark: { type: 'rule', strokeDash: [6, 4], strokeWidth: 1.5 },
      encoding: { y: { ...y, field: 'y' }, color: { ...color, datum: o.reference.name } },
    });
  }
  return { title: o.title, spec: { title: o.title, width: 380, height: 240, config: CONFIG, layer: layers } };
}

const extent = (xs: number[]): [number, number] => (xs.length ? [Math.min(...xs), Math.max(...xs)] : [1, 10]);

/** Ticks of a log axis: 1, 2, 5 times powers of ten inside [lo, hi] (Vega's own label every 1..9 and overlap). */
function logTicks([lo, hi]: [number, number]): number[] {
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of [1, 2, 5]) {
      const v = +(m * 10 ** e).toPrecision(6);
      if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) out.push(v);
    }
  }
  return out;
}

/**
 * Rows x columns of values with a colour scale and the value printed in each cell; null marks a
 * cell without a value (the diagonal), drawn grey with a dash.
 */
export function heatmap(values: (number | null)[][], rowLabels: string[], colLabels: string[], o: { title: string; rowTitle: string; colTitle: string; unit: string; digits?: number }): Chart {
  const cells = values.flatMap((r, i) => r.map((v, j) => ({ row: rowLabels[i], col: colLabels[j], value: v !== null && Number.isFinite(v) ? v : null })));
  const present = cells.map((c) => c.value).filter((v): v is number => v !== null);
  const mid = present.length ? (Math.min(...present) + Math.max(...present)) / 2 : 0;
  const digits = o.digits ?? 1;
  const spec = {
    title: o.title,
    config: CONFIG,
    data: { values: cells },
    transform: [{ calculate: `datum.value === null ? '—' : format(datum.value, '.${digits}f')`, as: 'label' }],
    width: { step: 64 },
    height: { step: 40 },
    encoding: {
      x: { field: 'col', type: 'nominal', sort: colLabels, title: o.colTitle, axis: { orient: 'top', labelAngle: -30, labelAlign: 'left' } },
      y: { field: 'row', type: 'nominal', sort: rowLabels, title: o.rowTitle },
    },
    layer: [
      {
        mark: { type: 'rect', stroke: 'white', strokeWidth: 2 },
        encoding: {
          color: {
            condition: { test: 'datum.value === null', value: '#eeeeee' },
            field: 'value', type: 'quantitative', title: o.unit,
            scale: { scheme: 'blues', nice: true, zero: false },
            legend: { orient: 'right', direction: 'vertical', gradientLength: 120, format: '.0f' },
          },
        },
      },
      {
        mark: { type: 'text', fontSize: 11 },
        encoding: {
          text: { field: 'label', type: 'nominal' },
          color: { condition: { test: `datum.value !== null && datum.value > ${mid}`, value: 'white' }, value: '#222' },
        },
      },
    ],
  };
  return { title: o.title, spec };
}

interface VegaModule {
  parse(spec: unknown): unknown;
  View: new (runtime: unknown, options: { renderer: 'none' }) => { toSVG(): Promise<string>; finalize(): void };
}
interface VegaLiteModule {
  compile(spec: unknown): { spec: unknown };
}

// A real import() (tsc would turn a literal one into require(), which cannot load an ES module
// with top-level await).
const importEsm = new Function('id', 'return import(id)') as (id: string) => Promise<unknown>;

async function load<T>(name: string): Promise<T> {
  try {
    return (await importEsm(name)) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw err;
    throw new Error(`the report's charts need the npm package ${name}: npm install vega vega-lite`);
  }
}

/** Each chart as standalone SVG markup (no scripts, no external resources). */
export async function renderCharts(charts: Chart[]): Promise<string[]> {
  if (charts.length === 0) return [];
  const [vega, vl] = await Promise.all([load<VegaModule>('vega'), load<VegaLiteModule>('vega-lite')]);
  const out: string[] = [];
  for (const c of charts) {
    const view = new vega.View(vega.parse(vl.compile(c.spec).spec), { renderer: 'none' });
    try {
      const svg = await view.toSVG();
      out.push(svg.replace(/^<svg /, `<svg role="img" aria-label="${escapeXml(c.title)}" `).replace(/ class="marks"/, ' class="chart marks"'));
    } finally {
      view.finalize();
    }
  }
  return out;
}

export function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&#39;' })[c]!);
}

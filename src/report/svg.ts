// Self-contained SVG charts for the HTML report: line charts (ROC, accuracy against pairs or
// rank) and a heatmap (the retention matrix). No scripts, no external resources.

export interface Series {
  name: string;
  points: [number, number][];
}

export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  logX?: boolean;
  yRange?: [number, number];
  width?: number;
  height?: number;
}

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];

export function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const fmt = (v: number) => (Math.abs(v) >= 1000 || (Math.abs(v) < 0.01 && v !== 0) ? v.toExponential(0) : String(+v.toPrecision(3)));

export function lineChart(series: Series[], o: LineChartOptions): string {
  const W = o.width ?? 520, H = o.height ?? 340, L = 60, R = 150, T = 34, B = 48;
  const pts = series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!o.logX || x > 0));
  const tx = (x: number) => (o.logX ? Math.log10(x) : x);
  const xs = pts.map(([x]) => tx(x)), ys = pts.map(([, y]) => y);
  const [x0, x1] = xs.length ? [Math.min(...xs), Math.max(...xs)] : [0, 1];
  const [y0, y1] = o.yRange ?? (ys.length ? [Math.min(...ys), Math.max(...ys)] : [0, 1]);
  const sx = (x: number) => L + ((tx(x) - x0) / (x1 - x0 || 1)) * (W - L - R);
  const sy = (y: number) => H - B - ((y - y0) / (y1 - y0 || 1)) * (H - T - B);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${escapeXml(o.title)}">`,
    `<text x="${W / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">${escapeXml(o.title)}</text>`,
    `<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="#333"/><line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="#333"/>`,
  ];
  for (let i = 0; i <= 4; i++) {
    const xv = x0 + ((x1 - x0) * i) / 4, yv = y0 + ((y1 - y0) * i) / 4;
    const xLabel = o.logX ? fmt(10 ** xv) : fmt(xv);
    const px = L + ((W - L - R) * i) / 4, py = sy(yv);
    parts.push(`<text x="${px}" y="${H - B + 16}" text-anchor="middle" font-size="11">${xLabel}</text>`);
    parts.push(`<text x="${L - 6}" y="${py + 4}" text-anchor="end" font-size="11">${fmt(yv)}</text>`);
    parts.push(`<line x1="${L}" y1="${py}" x2="${W - R}" y2="${py}" stroke="#eee"/>`);
  }
  parts.push(`<text x="${(L + W - R) / 2}" y="${H - 10}" text-anchor="middle" font-size="12">${escapeXml(o.xLabel)}${o.logX ? ' (log)' : ''}</text>`);
  parts.push(`<text x="14" y="${(T + H - B) / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 14 ${(T + H - B) / 2})">${escapeXml(o.yLabel)}</text>`);
  series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length];
    const p = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!o.logX || x > 0));
    if (p.length) {
      parts.push(`<polyline class="series" fill="none" stroke="${color}" stroke-width="2" points="${p.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ')}"/>`);
    }
    parts.push(`<rect x="${W - R + 10}" y="${T + i * 18}" width="12" height="3" fill="${color}"/><text x="${W - R + 26}" y="${T + i * 18 + 5}" font-size="11">${escapeXml(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

/** Rows x columns heatmap with the value printed in each cell (null: no value, e.g. the diagonal). */
export function heatmap(values: (number | null)[][], rowLabels: string[], colLabels: string[], o: { title: string; digits?: number; range?: [number, number] }): string {
  const cell = 46, L = 150, T = 40 + 110;
  const W = L + cell * colLabels.length + 20, H = T + cell * rowLabels.length + 20;
  const flat = values.flat().filter((v): v is number => v !== null && Number.isFinite(v));
  const [lo, hi] = o.range ?? (flat.length ? [Math.min(...flat), Math.max(...flat)] : [0, 1]);
  const colour = (v: number) => {
    const t = Math.max(0, Math.min(1, (v - lo) / (hi - lo || 1)));
    return `rgb(${Math.round(255 - 200 * t)},${Math.round(255 - 90 * t)},${Math.round(255 - 30 * t)})`;
  };
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" class="chart heatmap" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${escapeXml(o.title)}">`,
    `<text x="${W / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">${escapeXml(o.title)}</text>`,
  ];
  colLabels.forEach((c, j) => {
    const x = L + j * cell + cell / 2;
    parts.push(`<text x="${x}" y="${T - 6}" font-size="11" transform="rotate(-60 ${x} ${T - 6})">${escapeXml(c)}</text>`);
  });
  rowLabels.forEach((r, i) => {
    parts.push(`<text x="${L - 6}" y="${T + i * cell + cell / 2 + 4}" text-anchor="end" font-size="11">${escapeXml(r)}</text>`);
    values[i].forEach((v, j) => {
      const x = L + j * cell, y = T + i * cell;
      parts.push(`<rect class="cell" x="${x}" y="${y}" width="${cell - 2}" height="${cell - 2}" fill="${v === null ? '#f4f4f4' : colour(v)}"/>`);
      if (v !== null) parts.push(`<text x="${x + cell / 2 - 1}" y="${y + cell / 2 + 4}" text-anchor="middle" font-size="11">${v.toFixed(o.digits ?? 2)}</text>`);
    });
  });
  parts.push('</svg>');
  return parts.join('\n');
}

/** An SVG of end-to-end latency percentiles against offered load, one line per dataset and percentile, log-scaled in ms. */
export function latencyPlot(
  loads: readonly { rate: number; dataset: string; p50: number; p95: number; p99: number }[],
  raw: readonly { rate: number; p99: number }[],
): string {
  const width = 720;
  const height = 420;
  const margin = { left: 70, right: 180, top: 30, bottom: 50 };
  const rates = [...new Set([...loads.map((l) => l.rate), ...raw.map((r) => r.rate)])].sort((a, b) => a - b);
  const values = [...loads.flatMap((l) => [l.p50, l.p95, l.p99]), ...raw.map((r) => r.p99)].filter((v) => Number.isFinite(v) && v > 0);
  const low = 10 ** Math.floor(Math.log10(Math.min(...values, 1)));
  const high = 10 ** Math.ceil(Math.log10(Math.max(...values, 10)));
  const x = (rate: number) => margin.left + ((Math.log10(rate) - Math.log10(rates[0]!)) / Math.max(1e-9, Math.log10(rates.at(-1)!) - Math.log10(rates[0]!))) * (width - margin.left - margin.right);
  const y = (ms: number) => height - margin.bottom - ((Math.log10(Math.max(ms, low)) - Math.log10(low)) / (Math.log10(high) - Math.log10(low))) * (height - margin.top - margin.bottom);
  const colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"];
  const series: { name: string; points: { rate: number; ms: number }[]; dashed?: boolean }[] = [];
  for (const dataset of [...new Set(loads.map((l) => l.dataset))]) {
    const rows = loads.filter((l) => l.dataset === dataset).sort((a, b) => a.rate - b.rate);
    for (const p of ["p50", "p95", "p99"] as const) series.push({ name: `${dataset} ${p}`, points: rows.map((r) => ({ rate: r.rate, ms: r[p] })) });
  }
  series.push({ name: "raw kafkajs p99", points: raw.map((r) => ({ rate: r.rate, ms: r.p99 })), dashed: true });
  const lines = series.map((s, i) => {
    const colour = colours[i % colours.length]!;
    const path = s.points.map((p, j) => `${j === 0 ? "M" : "L"}${x(p.rate).toFixed(1)},${y(p.ms).toFixed(1)}`).join(" ");
    const dots = s.points.map((p) => `<circle cx="${x(p.rate).toFixed(1)}" cy="${y(p.ms).toFixed(1)}" r="3" fill="${colour}"/>`).join("");
    const legend = `<text x="${width - margin.right + 15}" y="${margin.top + 16 * i}" font-size="12" fill="${colour}">${s.name}</text>`;
    return `<path d="${path}" fill="none" stroke="${colour}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5,4"' : ""}/>${dots}${legend}`;
  });
  const yTicks: string[] = [];
  for (let v = low; v <= high; v *= 10) {
    yTicks.push(`<line x1="${margin.left}" x2="${width - margin.right}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/><text x="${margin.left - 8}" y="${y(v) + 4}" font-size="11" text-anchor="end">${v} ms</text>`);
  }
  const xTicks = rates.map((r) => `<text x="${x(r)}" y="${height - margin.bottom + 18}" font-size="11" text-anchor="middle">${r}/s</text>`);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${margin.left}" y="18" font-size="14">End-to-end latency against offered load (log scale)</text>`,
    ...yTicks,
    ...xTicks,
    `<text x="${(margin.left + width - margin.right) / 2}" y="${height - 12}" font-size="12" text-anchor="middle">offered inquiries per second</text>`,
    ...lines,
    "</svg>",
    "",
  ].join("\n");
}

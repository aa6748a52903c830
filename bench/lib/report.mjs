// Renders a benchmark result ({machine, measures, skipped}, bench/README.md "Result format")
// as an SVG chart, as docs/PERFORMANCE.md's generated part and as the README's headline
// block. Pure functions of their inputs (bench/run.mjs writes the files; test/bench tests these).

export const PERF_START = '<!-- bench:generated:start (npm run bench rewrites this part; edit the rest by hand) -->';
export const PERF_END = '<!-- bench:generated:end -->';
export const README_START = '<!-- bench:headline:start (npm run bench rewrites this block) -->';
export const README_END = '<!-- bench:headline:end -->';

/** `s` as one printable line (control characters and non-ASCII shown as '?'), at most `max` chars. */
export function oneLine(s, max = 200) {
  const t = String(s).replace(/[^\x20-\x7e]/g, '?');
  return t.length > max ? `${t.slice(0, max - 3)}...` : t;
}

const xml = (s) => oneLine(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const md = (s) => oneLine(s).replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/`/g, "'");
const num = (x) => (typeof x === 'number' && Number.isFinite(x) ? String(x) : '-');

/** Checks one result object; returns a list of problems (empty when valid). */
export function validateResult(r) {
  const bad = [];
  if (!r || typeof r !== 'object') return ['result: expected an object'];
  const m = r.machine;
  if (!m || typeof m.cpu !== 'string' || !Number.isInteger(m.cores) || typeof m.kernel !== 'string' || typeof m.node !== 'string' || !Array.isArray(m.loadavg) || typeof m.date !== 'string') bad.push('machine: expected {cpu, cores, kernel, node, loadavg, date}');
  if (!Array.isArray(r.measures)) return [...bad, 'measures: expected an array'];
  r.measures.forEach((x, i) => bad.push(...validateMeasure(x).map((p) => `measures[${i}]: ${p}`)));
  return bad;
}

/** Problems of one measure of the common format (empty when valid). */
export function validateMeasure(x) {
  const bad = [];
  if (!x || typeof x !== 'object') return ['expected an object'];
  for (const k of ['name', 'unit', 'how']) if (typeof x[k] !== 'string' || x[k] === '') bad.push(`${k}: expected a non-empty string, got ${JSON.stringify(x[k])}`);
  for (const k of ['nmwasm', 'baseline', 'ratio']) if (!(typeof x[k] === 'number' && Number.isFinite(x[k])) && x[k] !== null) bad.push(`${k}: expected a number or null, got ${JSON.stringify(x[k])}`);
  if (!(x.target === null || (typeof x.target === 'number' && x.target > 0))) bad.push(`target: expected a positive number or null, got ${JSON.stringify(x.target)}`);
  return bad;
}

/** Horizontal bars of ratio (nmwasm/baseline) per measure, a red tick at each target, a
 * dashed line at 1.0; bars past the axis end are cut and carry their value. */
export function renderSvg(result) {
  const ms = result.measures.filter((x) => typeof x.ratio === 'number');
  const rowH = 18, left = 380, width = 380, top = 46, axisMax = Math.min(4, Math.max(1.5, ...ms.map((x) => Math.max(x.ratio, x.target ?? 0))) * 1.1);
  const h = top + ms.length * rowH + 34;
  const px = (v) => left + (Math.min(v, axisMax) / axisMax) * width;
  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${left + width + 70}" height="${h}" font-family="sans-serif" font-size="11">`);
  out.push(`<rect width="100%" height="100%" fill="#fff"/>`);
  const m = result.machine;
  out.push(`<text x="8" y="16" font-size="13" font-weight="bold">nmwasm / baseline, CPU time per unit (lower is better; red tick: target)</text>`);
  out.push(`<text x="8" y="32">${xml(`${m.cpu}, ${m.cores} cores, kernel ${m.kernel}, node ${m.node}, load average ${m.loadavg.join(' ')}, ${m.date}`)}</text>`);
  for (let t = 0; t <= axisMax + 1e-9; t += 0.5) {
    out.push(`<line x1="${px(t).toFixed(1)}" y1="${top - 4}" x2="${px(t).toFixed(1)}" y2="${top + ms.length * rowH}" stroke="#ddd"/>`);
    out.push(`<text x="${px(t).toFixed(1)}" y="${top + ms.length * rowH + 14}" text-anchor="middle">${t.toFixed(1)}x</text>`);
  }
  ms.forEach((x, i) => {
    const y = top + i * rowH;
    const ok = x.target === null || x.ratio <= x.target;
    out.push(`<text x="${left - 6}" y="${y + 12}" text-anchor="end">${xml(x.name)}</text>`);
    out.push(`<rect x="${left}" y="${y + 3}" width="${(px(x.ratio) - left).toFixed(1)}" height="${rowH - 6}" fill="${ok ? '#4c9a2a' : '#e08a1e'}"/>`);
    out.push(`<text x="${(px(x.ratio) + 4).toFixed(1)}" y="${y + 12}">${x.ratio.toFixed(2)}</text>`);
    if (x.target !== null) out.push(`<line x1="${px(x.target).toFixed(1)}" y1="${y + 1}" x2="${px(x.target).toFixed(1)}" y2="${y + rowH - 1}" stroke="#d00" stroke-width="2"/>`);
  });
  out.push(`<line x1="${px(1)}" y1="${top - 4}" x2="${px(1)}" y2="${top + ms.length * rowH}" stroke="#333" stroke-dasharray="3,3"/>`);
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

/** The generated part of docs/PERFORMANCE.md (between the markers, markers included). */
export function renderPerformanceBlock(result) {
  const m = result.machine;
  const lines = [PERF_START, '', `Measured ${md(m.date)} on ${md(m.cpu)}, ${m.cores} cores, kernel ${md(m.kernel)}, node ${md(m.node)}; load average ${m.loadavg.join(' ')} at the start${result.loadavgEnd ? `, ${result.loadavgEnd.join(' ')} at the end` : ''} (the machine is shared: compare ratios, not absolute figures). Every line is a median of paired, interleaved runs; \`how\` reproduces it.`, ''];
  lines.push('![ratio per measure](../bench/results/latest.svg)', '');
  lines.push('| measure | unit | nmwasm | baseline | ratio | target | met | how |', '|---|---|---:|---:|---:|---:|:-:|---|');
  for (const x of result.measures) {
    const met = x.target === null || x.ratio === null ? '' : x.ratio <= x.target ? 'yes' : 'no';
    lines.push(`| ${md(x.name)} | ${md(x.unit)} | ${num(x.nmwasm)} | ${num(x.baseline)} | ${num(x.ratio)} | ${x.target === null ? '-' : `<= ${x.target}`} | ${met} | \`${md(x.how)}\` |`);
  }
  if (result.skipped?.length) {
    lines.push('', 'Not measured in this run:', '');
    for (const s of result.skipped) lines.push(`- \`${md(s.script)}\`: ${md(s.reason)}`);
  }
  lines.push('', PERF_END);
  return lines.join('\n');
}


/** `doc` (the current docs/PERFORMANCE.md, or '' when absent) with its generated part
 * replaced by `block`; everything outside the markers is kept as it is. */
export function spliceBlock(doc, block, start, end, fallback) {
  const a = doc.indexOf(start), b = doc.indexOf(end);
  if (a < 0 || b < a) return fallback(block);
  return doc.slice(0, a) + block + doc.slice(b + end.length);
}

/** The README's headline block: the 64-byte measures against C -O2 and every measure of
 * other scripts that has no variant (those without "imix" and "-O3" in the name). */
export function renderReadmeBlock(result) {
  const head = result.measures.filter((x) => !/imix|-O3/.test(x.name) && x.ratio !== null);
  const lines = [README_START, '', `Headline ratios (nmwasm / baseline, CPU time; lower is better), \`npm run bench\` on ${md(result.machine.cpu)} at load average ${result.machine.loadavg.join(' ')}, ${result.machine.date.slice(0, 10)}; every measure, its command and the C baselines' review: [docs/PERFORMANCE.md](docs/PERFORMANCE.md).`, ''];
  lines.push('| measure | ratio | target |', '|---|---:|---:|');
  for (const x of head) lines.push(`| ${md(x.name)} | ${num(x.ratio)} | ${x.target === null ? '-' : `<= ${x.target}`} |`);
  lines.push('', README_END);
  return lines.join('\n');
}

// npm run bench's writers (bench/lib/report.mjs): the result checker, the SVG chart, the
// generated part of docs/PERFORMANCE.md and the README block, on a result with hostile
// text (a benchmark's name and command end up in an SVG and in Markdown tables).
import { test } from 'uvu';
import * as assert from 'uvu/assert';

interface Measure { name: string; unit: string; nmwasm: number | null; baseline: number | null; ratio: number | null; target: number | null; how: string }
interface Result { machine: { cpu: string; cores: number; kernel: string; node: string; loadavg: number[]; date: string }; measures: Measure[]; skipped?: { script: string; reason: string }[] }
interface Report {
  validateResult(r: unknown): string[];
  renderSvg(r: Result): string;
  renderPerformanceBlock(r: Result): string;
  renderReadmeBlock(r: Result): string;
  spliceBlock(doc: string, block: string, start: string, end: string, fallback: (b: string) => string): string;
  PERF_START: string; PERF_END: string;
}
const modulePath = '../../bench/lib/report.mjs';
const report = (await import(modulePath)) as Report;

const hostile = 'x <script>alert(1)</script> & "q" | pipe `tick`\n\u0007bell \u00e9';
const result: Result = {
  machine: { cpu: 'Test CPU <1>', cores: 2, kernel: '6.1.0', node: 'v20.0.0', loadavg: [1.5, 1, 0.5], date: '2026-12-01T00:00:00.000Z' },
  measures: [
    { name: 'counter 64B isolated vs C -O2', unit: 'ns/packet (CPU)', nmwasm: 2.6, baseline: 2, ratio: 1.3, target: 1.3, how: 'node bench/filters.mjs --only counter --size 64' },
    { name: hostile, unit: 'ns/packet', nmwasm: 9, baseline: 1, ratio: 9, target: 1.1, how: `node x.mjs | ${hostile}` },
    { name: 'no target', unit: 'ms', nmwasm: 1, baseline: 2, ratio: 0.5, target: null, how: 'node y.mjs' },
  ],
  skipped: [{ script: 'bench/xdp-fast.mjs', reason: 'needs root' }],
};

test('validateResult accepts a good result and names what is wrong in a bad one', () => {
  assert.equal(report.validateResult(result), []);
  const bad = structuredClone(result);
  (bad.measures[0] as unknown as Record<string, unknown>).ratio = 'fast';
  delete (bad.measures[2] as unknown as Record<string, unknown>).how;
  const problems = report.validateResult(bad);
  assert.is(problems.length, 2, problems.join('; '));
  assert.match(problems[0]!, /^measures\[0\]: ratio: expected a number or null, got "fast"$/);
  assert.match(problems[1]!, /^measures\[2\]: how: expected a non-empty string/);
  assert.match(report.validateResult({ measures: [] }).join(), /machine: expected/);
});

test('the SVG has one bar and one target tick per measure, and hostile text only escaped', () => {
  const svg = report.renderSvg(result);
  assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  assert.ok(svg.trimEnd().endsWith('</svg>'));
  // every tag is one the writer makes: nothing from the measures' text became markup
  for (const tag of svg.match(/<[^>]*>/g) ?? []) assert.match(tag, /^<\/?(svg|rect|text|line)[ >/]/, tag);
  assert.ok(svg.includes('&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;q&quot;'));
  assert.not.match(svg, /[\u0000-\u0008\u000b-\u001f\u007f-\uffff]/);
  assert.is((svg.match(/<rect /g) ?? []).length, 1 + result.measures.length); // background + bars
  assert.is((svg.match(/stroke="#d00"/g) ?? []).length, 2); // the measures with a target
  // a ratio past the axis is cut at the axis end, not drawn off the chart
  const widths = [...svg.matchAll(/<rect x="(\d+)" y="[\d.]+" width="([\d.]+)"/g)].map((m) => Number(m[1]) + Number(m[2]));
  const svgWidth = Number((svg.match(/^<svg[^>]* width="(\d+)"/) ?? [])[1]);
  for (const right of widths) assert.ok(right < svgWidth, `bar ends at ${right} of ${svgWidth}`);
});

test('PERFORMANCE.md: the table has one row per measure with its command; the rest of the file is kept', () => {
  const block = report.renderPerformanceBlock(result);
  assert.ok(block.startsWith(report.PERF_START) && block.endsWith(report.PERF_END));
  const rows = block.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| measure'));
  assert.is(rows.length, result.measures.length);
  for (const row of rows) assert.is(row.split(/(?<!\\)\|/).length, 10, row); // 8 cells: no unescaped | from the text
  assert.ok(rows[0]!.includes('`node bench/filters.mjs --only counter --size 64`'));
  assert.ok(rows[0]!.includes('| yes |') && rows[1]!.includes('| no |'));
  assert.match(block, /load average 1\.5 1 0\.5/);
  assert.match(block, /`bench\/xdp-fast\.mjs`: needs root/);
  assert.not.match(block, /[\u0000-\u0009\u000b-\u001f]/);

  const doc = `# Performance\n\nintro by hand\n\n${report.PERF_START}\nold table\n${report.PERF_END}\n\n## Review\n\nhand-written review\n`;
  const next = report.spliceBlock(doc, block, report.PERF_START, report.PERF_END, () => 'fallback');
  assert.ok(next.startsWith('# Performance\n\nintro by hand\n\n'));
  assert.ok(next.endsWith('\n\n## Review\n\nhand-written review\n'));
  assert.not.ok(next.includes('old table'));
  assert.is(report.spliceBlock('no markers here', block, report.PERF_START, report.PERF_END, (b) => `new ${b.length}`), `new ${block.length}`);
});

test('the README block lists the headline measures only (no imix, no -O3 variants)', () => {
  const r = structuredClone(result);
  r.measures.push({ ...r.measures[0]!, name: 'counter imix isolated vs C -O2' }, { ...r.measures[0]!, name: 'counter 64B isolated vs C -O3 -march=native' });
  const block = report.renderReadmeBlock(r);
  const rows = block.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| measure'));
  assert.is(rows.length, 3);
  assert.not.ok(block.includes('imix') || block.includes('-O3'));
});

test.run();

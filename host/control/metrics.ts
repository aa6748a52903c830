// Prometheus metrics of a host (--metrics ADDR:PORT): an HTTP server answering GET /metrics
// with the text exposition of prom-client. Values are read from the rings' shared counters
// at scrape time (collect callbacks), so the packet path does no extra work and /metrics
// agrees with `nmwasm stats` and the final summary. Labels: host, clause, ring, module, port.
// A non-loopback address is refused unless --metrics-public is given (checked in
// parseMetricsAddress, at the edge).
import { createServer, type Server } from 'node:http';
import { isIP } from 'node:net';
import { Counter as PromCounter, Gauge, Registry } from 'prom-client';
import { UsageError, quote } from '../cli/errors.ts';
import { Counter } from '../ports/native.ts';
import { BATCH_BUCKETS, RingState } from '../engine/ringshared.ts';
import { STALL_BUCKETS_US, type SwapCounts } from '../engine/swap.ts';
import { moduleTotals, type ModuleTotals } from '../cli/stats.ts';
import type { RingRun, RunResult } from '../engine/engine.ts';

/** One clause as the metrics see it. */
export interface MetricsClause {
  clause: number;
  module: string;
  port: string;
  rings: readonly RingRun[];
  /** The clause's chain of modules (one for a plain clause): per-module series. */
  chain: RunResult['chain'];
  /** Names of the chain's modules for the `module` label (as ps shows them). */
  moduleNames: string[];
  swaps: number;
  canaryFailures: number;
  /** Packets of the input the kernel decided from flow verdicts (AF_XDP). */
  kernel: { drop: number; pass: number };
  swapCounts?: SwapCounts; // the stall histogram (nmwasm_swap_stall_seconds)
}

export interface MetricsAddress {
  host: string; // an IP address or "localhost"
  port: number;
}

/** Parses --metrics ADDR:PORT (IPv4, [IPv6] or localhost; port 1..65535). A non-loopback
 * address without --metrics-public is refused in one line. */
export function parseMetricsAddress(text: string, isPublic: boolean): MetricsAddress {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\[\]]+)):([0-9]{1,5})$/.exec(text);
  const host = m ? (m[1] ?? m[2])! : '';
  const port = m ? Number(m[3]) : 0;
  if (!m || (host !== 'localhost' && isIP(host) === 0) || (m[1] !== undefined && isIP(host) !== 6) || port < 1 || port > 65535) {
    throw new UsageError(`--metrics: expected ADDR:PORT (an IPv4 address, [IPv6] or localhost, port 1..65535, e.g. 127.0.0.1:9464), got ${quote(text, 60)}`);
  }
  const loopback = host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
  if (!loopback && !isPublic) {
    throw new UsageError(`--metrics: expected a loopback address (127.0.0.1, [::1], localhost), got ${quote(text, 60)}: it would serve the metrics to the network; add --metrics-public to allow that`);
  }
  return { host, port };
}

const FAULT_KINDS: [string, (c: Float64Array, s: Float64Array) => number][] = [
  ['trap', (c) => c[Counter.traps]!],
  ['timeout', (c) => c[Counter.timeouts]!],
  ['violation', (_c, s) => s[RingState.violationFaults]!],
  ['bad_return', (_c, s) => s[RingState.badReturns]!],
  ['init', (_c, s) => s[RingState.initFaults]!],
  ['crash', (_c, s) => s[RingState.workerCrashes]!],
];

// A faulted module of a chain ends packets with the fault verdict: native counted them under the
// verdict applied, the summaries under fault (host/cli/stats.ts sumCounters); so do the metrics.
const VERDICTS: [string, (c: Float64Array, s: Float64Array) => number][] = [
  ['pass', (c, s) => c[Counter.pass]! - s[RingState.chainFaultPass]!],
  ['drop', (c, s) => c[Counter.drop]! - s[RingState.chainFaultDrop]!],
  ['host', (c) => c[Counter.host]!],
  ['forward', (c) => c[Counter.forward]!],
  ['fault', (c, s) => c[Counter.faultVerdicts]! + s[RingState.chainFaultDrop]! + s[RingState.chainFaultPass]!],
];

const MODULE_VERDICTS: [string, (m: ModuleTotals) => number][] = [
  ['pass', (m) => m.verdicts.pass],
  ['drop', (m) => m.verdicts.drop],
  ['host', (m) => m.verdicts.host],
  ['forward', (m) => m.verdicts.forward],
  ['fault', (m) => m.verdicts.fault],
];
const MODULE_FAULTS: [string, (m: ModuleTotals) => number][] = [
  ['trap', (m) => m.faults.traps],
  ['timeout', (m) => m.faults.timeouts],
  ['violation', (m) => m.faults.violations],
  ['bad_return', (m) => m.faults.badReturns],
  ['init', (m) => m.faults.initFaults],
];

/** The registry of one host: every value is read from `clauses()` at scrape time. */
export function hostRegistry(hostName: string, clauses: () => MetricsClause[], startedAt: number): Registry {
  const registry = new Registry();
  const ringLabels = ['host', 'clause', 'ring', 'module', 'port'] as const;
  type L = (typeof ringLabels)[number];
  // A counter refilled from the rings at each scrape (prom-client keeps no state of its own here).
  const perRing = (name: string, help: string, value: (c: Float64Array, s: Float64Array) => number): void => {
    new PromCounter<L>({
      name,
      help,
      labelNames: ringLabels,
      registers: [registry],
      collect() {
        this.reset();
        for (const cl of clauses()) for (const r of cl.rings) this.inc({ host: hostName, clause: String(cl.clause), ring: String(r.ring), module: cl.module, port: cl.port }, value(r.counters, r.state));
      },
    });
  };
  perRing('nmwasm_packets_total', 'Packets taken from the input port by the ring.', (c) => c[Counter.packets]!);
  perRing('nmwasm_bytes_total', 'Bytes of those packets.', (c) => c[Counter.bytes]!);
  perRing('nmwasm_batches_total', 'Batches handed to the filter.', (c) => c[Counter.batches]!);
  perRing('nmwasm_out_packets_total', 'Packets written to the output ports.', (c) => c[Counter.outPackets]!);
  perRing('nmwasm_out_drops_total', 'Packets an output port refused.', (c) => c[Counter.outDrops]!);
  perRing('nmwasm_restarts_total', 'Fresh instances started after a fault.', (c) => c[Counter.restarts]!);
  // A counter per ring and per value of one more label (`extra`), refilled at each scrape.
  const perRingBy = (name: string, help: string, extra: 'verdict' | 'kind', values: [string, (c: Float64Array, s: Float64Array) => number][]): void => {
    new PromCounter<L | typeof extra>({
      name,
      help,
      labelNames: [...ringLabels, extra],
      registers: [registry],
      collect() {
        this.reset();
        for (const cl of clauses()) {
          for (const r of cl.rings) {
            for (const [value, get] of values) this.inc({ host: hostName, clause: String(cl.clause), ring: String(r.ring), module: cl.module, port: cl.port, [extra]: value }, get(r.counters, r.state));
          }
        }
      },
    });
  };
  perRingBy('nmwasm_verdicts_total', 'Packets by verdict (fault: the --on-fault verdict); they add up to nmwasm_packets_total.', 'verdict', VERDICTS);
  perRingBy('nmwasm_faults_total', 'Filter faults by kind.', 'kind', FAULT_KINDS);
  // Per module of the clause's chain (docs/ABI.md section 9): `module` names the chain's
  // module, `position` its 0-based place in the chain.
  const moduleLabels = ['host', 'clause', 'ring', 'module', 'position', 'port'] as const;
  type ML = (typeof moduleLabels)[number];
  const perModule = (name: string, help: string, extra: 'verdict' | 'kind' | null, values: [string, (m: ModuleTotals) => number][]): void => {
    new PromCounter<ML | 'verdict' | 'kind'>({
      name,
      help,
      labelNames: extra === null ? moduleLabels : [...moduleLabels, extra],
      registers: [registry],
      collect() {
        this.reset();
        for (const cl of clauses()) {
          for (const r of cl.rings) {
            for (const m of moduleTotals(cl.chain, [r])) {
              const labels = { host: hostName, clause: String(cl.clause), ring: String(r.ring), module: cl.moduleNames[m.index] ?? m.module, position: String(m.index), port: cl.port };
              for (const [value, get] of values) this.inc(extra === null ? labels : { ...labels, [extra]: value }, get(m));
            }
          }
        }
      },
    });
  };
  perModule('nmwasm_module_packets_total', 'Packets that reached the module of the chain (PASS of every module before it).', null, [['', (m) => m.packets]]);
  perModule('nmwasm_module_verdicts_total', 'Packets by the verdict the module of the chain gave them (fault: the --on-fault verdict of a faulted module); they add up to nmwasm_module_packets_total.', 'verdict', MODULE_VERDICTS);
  perModule('nmwasm_module_faults_total', 'Faults of the module of the chain by kind.', 'kind', MODULE_FAULTS);
  const perClause = (name: string, help: string, value: (cl: MetricsClause) => number): void => {
    new PromCounter<'host' | 'clause' | 'module' | 'port'>({
      name,
      help,
      labelNames: ['host', 'clause', 'module', 'port'],
      registers: [registry],
      collect() {
        this.reset();
        for (const cl of clauses()) this.inc({ host: hostName, clause: String(cl.clause), module: cl.module, port: cl.port }, value(cl));
      },
    });
  };
  perClause('nmwasm_swaps_total', 'Modules swapped in while traffic flowed.', (cl) => cl.swaps);
  perClause('nmwasm_canary_failures_total', 'Swaps refused because the canary faulted.', (cl) => cl.canaryFailures);
  new PromCounter<'host' | 'clause' | 'module' | 'port' | 'verdict'>({
    name: 'nmwasm_kernel_verdicts_total',
    help: 'Packets the kernel decided from the filter\'s flow verdicts without handing them to the ring (AF_XDP); not in nmwasm_packets_total.',
    labelNames: ['host', 'clause', 'module', 'port', 'verdict'],
    registers: [registry],
    collect() {
      this.reset();
      for (const cl of clauses()) {
        for (const verdict of ['drop', 'pass'] as const) this.inc({ host: hostName, clause: String(cl.clause), module: cl.module, port: cl.port, verdict }, cl.kernel[verdict]);
      }
    },
  });
  const perRingGauge = (name: string, help: string, slot: number): void => {
    new Gauge<L>({
      name,
      help,
      labelNames: ringLabels,
      registers: [registry],
      collect() {
        this.reset();
        for (const cl of clauses()) for (const r of cl.rings) this.set({ host: hostName, clause: String(cl.clause), ring: String(r.ring), module: cl.module, port: cl.port }, r.state[slot]!);
      },
    });
  };
  perRingGauge('nmwasm_ring_occupancy_slots', 'Filled slots handed to the filter at the ring\'s last sync.', RingState.lastBatchSlots);
  perRingGauge('nmwasm_instance_memory_bytes', 'Linear memory of the ring\'s current filter instance.', RingState.instanceMemory);
  // The batch duration histogram lives in the rings' shared state (the worker counts each
  // guest call, host/engine/ringshared.ts recordBatchDuration); prom-client renders it as given.
  registry.registerMetric({
    name: 'nmwasm_batch_duration_seconds',
    help: 'Duration of one nmwasm_process call (a batch).',
    type: 'histogram',
    aggregator: 'sum',
    reset() {},
    get() {
      const values: { value: number; labels: Record<string, string | number>; metricName: string }[] = [];
      for (const cl of clauses()) {
        for (const r of cl.rings) {
          const labels = { host: hostName, clause: String(cl.clause), ring: String(r.ring), module: cl.module, port: cl.port };
          BATCH_BUCKETS.forEach((le, i) => values.push({ value: r.state[RingState.batchBuckets + i]!, labels: { ...labels, le }, metricName: 'nmwasm_batch_duration_seconds_bucket' }));
          const count = r.state[RingState.batchBuckets + BATCH_BUCKETS.length]!;
          values.push({ value: count, labels: { ...labels, le: '+Inf' }, metricName: 'nmwasm_batch_duration_seconds_bucket' });
          values.push({ value: r.state[RingState.batchSeconds]!, labels, metricName: 'nmwasm_batch_duration_seconds_sum' });
          values.push({ value: count, labels, metricName: 'nmwasm_batch_duration_seconds_count' });
        }
      }
      return { name: 'nmwasm_batch_duration_seconds', help: 'Duration of one nmwasm_process call (a batch).', type: 'histogram', aggregator: 'sum', values };
    },
  } as unknown as Parameters<Registry['registerMetric']>[0]);
  // The swap stall histogram (host/engine/swap.ts recordSwap): one observation per swap of a clause.
  registry.registerMetric({
    name: 'nmwasm_swap_stall_seconds',
    help: 'Ring stall of a hot-swap: from the old instance\'s last batch to the new one\'s first (compile excluded).',
    type: 'histogram',
    aggregator: 'sum',
    reset() {},
    get() {
      const values: { value: number; labels: Record<string, string | number>; metricName: string }[] = [];
      for (const cl of clauses()) {
        const c = cl.swapCounts;
        if (c === undefined) continue;
        const labels = { host: hostName, clause: String(cl.clause), module: cl.module, port: cl.port };
        STALL_BUCKETS_US.forEach((le, i) => values.push({ value: c.buckets[i]!, labels: { ...labels, le: le / 1e6 }, metricName: 'nmwasm_swap_stall_seconds_bucket' }));
        values.push({ value: c.done, labels: { ...labels, le: '+Inf' }, metricName: 'nmwasm_swap_stall_seconds_bucket' });
        values.push({ value: c.stallSumUs / 1e6, labels, metricName: 'nmwasm_swap_stall_seconds_sum' });
        values.push({ value: c.done, labels, metricName: 'nmwasm_swap_stall_seconds_count' });
      }
      return { name: 'nmwasm_swap_stall_seconds', help: 'Ring stall of a hot-swap: from the old instance\'s last batch to the new one\'s first (compile excluded).', type: 'histogram', aggregator: 'sum', values };
    },
  } as unknown as Parameters<Registry['registerMetric']>[0]);
  new Gauge<'host'>({
    name: 'nmwasm_uptime_seconds',
    help: 'Seconds since the host started.',
    labelNames: ['host'],
    registers: [registry],
    collect() {
      this.set({ host: hostName }, (Date.now() - startedAt) / 1000);
    },
  });
  return registry;
}

/** Serves GET /metrics of `registry` on `address`; a port in use or an address not on this
 * machine is a one-line UsageError. */
export async function serveMetrics(registry: Registry, address: MetricsAddress): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: GET /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`error: ${String(err)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new UsageError(`--metrics: cannot listen on ${address.host}:${address.port} (${err.code}): ${err.code === 'EADDRINUSE' ? 'the port is in use; pick another' : 'is the address on this machine?'}`)));
    server.listen(address.port, address.host, () => resolve());
  });
  server.unref();
  return server;
}

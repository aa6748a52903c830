// The netmap backend's kernel-facing half (native/netmap/netmap_session.cc, used by
// native/netmap/port_netmap.cc) against a fake netmap kernel (test/native/netmap_fake.cc, built
// here with g++): register requests encoded from parsed port names, netmap's own region
// mapped from the fd (a default build) or the extmem region (an extmem build), pipes whose
// peer is open (the peer's region), ring numbers checked before the kernel, ring lookup
// through netmap_if.ring_ofs[], RX through a shadow, NS_FORWARD for HOST
// verdicts and PASS without an output (hardware rings of an interface), TX copies. /dev/netmap cannot exist on this machine: nothing here touches a
// real netmap kernel (docs/PORTS.md "netmap backend" lists what that leaves unverified).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parsePortName, netmapRegisterFields, NR_FLAG, NR_REG } from '../../host/ports/portname.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'nmwasm-netmap-'));
const fake = join(dir, 'netmap_fake');
execFileSync('g++', ['-std=c++17', '-O1', '-Wall', '-Wextra', '-Werror', '-I', join(root, 'native'), '-o', fake, join(root, 'test/native/netmap_fake.cc'), join(root, 'native/netmap/netmap_session.cc'), '-lpthread'], { stdio: 'pipe' });
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

/** The fake kernel's module: a default netmap build (no extmem) or --enable-extmem; `peer`: a pipe's other end is open. */
type Kernel = { build?: 'default' | 'extmem'; peer?: boolean; tx?: 'held' | 'stuck' };

function run(args: string[], k: Kernel = {}): Record<string, any> {
  const env = { ...process.env, FAKE_BUILD: k.build ?? 'default', FAKE_PEER: k.peer ? '1' : '0', FAKE_TX: k.tx ?? '' };
  return JSON.parse(execFileSync(fake, args, { encoding: 'utf8', env }));
}

/** Registers `spec` (parsed and encoded as the host does) with the fake kernel (4 hardware and 1 host ring pair):
 * plainly (netmap's region mapped from the fd) or, with `extmem`, with the extmem option. */
function register(spec: string, k: Kernel = {}, extmem = false): Record<string, any> {
  const f = netmapRegisterFields(parsePortName(spec));
  const fields = [f.nrName, f.nrMode, f.nrRingid, f.nrFlags, f.nrMemId, f.txSlots, f.rxSlots, f.txRings, f.rxRings, f.hostTxRings, f.hostRxRings].map(String);
  return run([extmem ? 'register-extmem' : 'register', ...fields], k);
}

test('register requests: header, mode, ring, flags as the fake kernel decoded them; rings bound', () => {
  const cases: Array<[string, { name: string; mode: number; ringid: number; flags: number; rx: number; tx: number; forwards: boolean }]> = [
    ['netmap:eth0', { name: 'eth0', mode: NR_REG.ALL_NIC, ringid: 0, flags: 0, rx: 4, tx: 4, forwards: true }],
    ['netmap:eth0-2/R', { name: 'eth0', mode: NR_REG.ONE_NIC, ringid: 2, flags: NR_FLAG.RX_RINGS_ONLY, rx: 1, tx: 0, forwards: true }],
    ['netmap:eth0^', { name: 'eth0', mode: NR_REG.SW, ringid: 0, flags: 0, rx: 1, tx: 1, forwards: false }],
    ['netmap:eth0*', { name: 'eth0', mode: NR_REG.NIC_SW, ringid: 0, flags: 0, rx: 5, tx: 5, forwards: true }],
    ['vale0:p1', { name: 'vale0:p1', mode: NR_REG.ALL_NIC, ringid: 0, flags: 0, rx: 4, tx: 4, forwards: false }],
    ['p{1', { name: 'p{1', mode: NR_REG.ALL_NIC, ringid: 0, flags: 0, rx: 4, tx: 4, forwards: false }],
  ];
  for (const [spec, want] of cases) {
    const out = register(spec);
    assert.not.ok(out.failure, `${spec}: ${JSON.stringify(out)}`);
    assert.is(out.name, want.name, spec);
    assert.is(out.version, 14, spec);
    assert.is(out.reqtype, 1, `${spec}: NETMAP_REQ_REGISTER`);
    assert.is(out.mode, want.mode, spec);
    assert.is(out.ringid, want.ringid, spec);
    assert.is(out.flags, want.flags, spec);
    assert.is(out.boundRx, want.rx, `${spec}: RX rings`);
    assert.is(out.boundTx, want.tx, `${spec}: TX rings`);
    assert.is(out.forwards, want.forwards, `${spec}: NR_FORWARD`);
    assert.is(out.extmem, false, `${spec}: a plain register (a default netmap build has no extmem)`);
    assert.is(out.replyMemId, 2, `${spec}: the reply is read back`);
    assert.ok(out.regionBytes > 0 && out.ringsInRegion, `${spec}: the rings lie in netmap's region, mapped from the fd`);
  }
});

test('default netmap build: a register with extmem is refused (EOPNOTSUPP), and the failure says this netmap lacks extmem', () => {
  const out = register('vale0:p1', { build: 'default' }, true);
  assert.is(out.failure?.errno, 95, JSON.stringify(out));
  assert.match(out.failure.what, /lacks extmem/);
  assert.is(out.closed, true);
});

test("extmem build: the extmem option points at the port's memory, the rings lie there", () => {
  const out = register('vale0:p1', { build: 'extmem' }, true);
  assert.not.ok(out.failure, JSON.stringify(out));
  assert.ok(out.extmem && out.extmemAtRegion, "the extmem option points at the port's memory");
  assert.is(out.extmemSize, out.poolBytes, "extmem size = the pools' size");
  assert.ok(out.ringsInRegion);
});

test("pipe with its peer open: the reply names the peer's region (id 4, 42369024 bytes) and the rings are found there, both builds", () => {
  for (const build of ['default', 'extmem'] as const) {
    for (const spec of ['p{1', 'p}1']) {
      const out = register(spec, { build, peer: true });
      assert.not.ok(out.failure, `${build} ${spec}: ${JSON.stringify(out)}`);
      assert.is(out.replyMemId, 4, `${build} ${spec}`);
      assert.is(out.regionBytes, 42369024, `${build} ${spec}`);
      assert.is(out.boundRx, 4, `${build} ${spec}: RX rings found in the mapped region (was: "netmap bound 0 RX rings")`);
      assert.ok(out.ringsInRegion, `${build} ${spec}`);
      assert.ok(out.poolsInfoBufs > 20000, `${build} ${spec}: POOLS_INFO_GET names the peer's buffer pool`);
    }
  }
  // With extmem asked for, netmap ignores the option for such a pipe: the session notices the other region.
  const ext = register('p{1', { build: 'extmem', peer: true }, true);
  assert.is(ext.failure?.errno, 71, JSON.stringify(ext));
  assert.match(ext.failure.what, /memory region 4 \(42369024 bytes\), not in the \d+ bytes offered/);
});

test('register: @conf counts and the memory region travel in the request', () => {
  const out = register('vale0:p1@2@conf:rings=2,slots=128');
  assert.is(out.memId, 2);
  assert.equal(out.slots, [128, 128]);
  assert.equal(out.rings, [2, 2, 0, 0]);
});

test('RX: 300 packets through a 16-slot shadow, kernel buffers in place, every slot handed back', () => {
  const out = run(['rx', '300']);
  assert.is(out.received, 300);
  assert.is(out.bad, 0, 'length and bytes of each buffer as the kernel wrote them');
  assert.is(out.outside, 0, 'every buffer lies inside the extmem region');
  assert.ok(out.batches >= 300 / 16, `batches of at most 16: ${out.batches}`);
  assert.is(out.pendingLeft, 0);
  assert.is(out.head, 300 % 64, 'head advanced past every released slot (64-slot kernel ring)');
});

test('RX: slots the filter released go back to the kernel at the next take, not only once the ring is drained (one NIOCRXSYNC per batch)', () => {
  const out = run(['release']);
  assert.is(out.first, 16);
  assert.is(out.second, 16);
  assert.is(out.kernelHasBack, 16, 'the kernel has the 16 released slots back after the second take (a VALE sender may fill them)');
  assert.is(out.syncsForSecond, 1, 'one NIOCRXSYNC for the batch');
  assert.is(out.third, 8);
  assert.is(out.syncsForThird, 0, 'nothing released since: no sync while taken slots remain');
});

test('monitors (/r, /t, /z): registered without extmem, netmap\'s own memory mmapped, max(RX, TX) RX rings, no NR_FORWARD, unmapped at close', () => {
  for (const [flag, what] of [
    [NR_FLAG.MONITOR_RX, '/r'],
    [NR_FLAG.MONITOR_TX, '/t'],
    [NR_FLAG.MONITOR_RX | NR_FLAG.MONITOR_TX, '/rt'],
    [NR_FLAG.ZCOPY_MON, '/z'],
  ] as const) {
    const out = run(['monitor', String(flag)]);
    assert.not.ok(out.failure, `${what}: ${JSON.stringify(out)}`);
    assert.is(out.flags, flag | NR_FLAG.RX_RINGS_ONLY, `${what}: the monitor flags travel in nr_flags`);
    assert.is(out.extmem, false, `${what}: no extmem option (netmap would not use it for a monitor)`);
    assert.ok(out.mapped && out.mmaps === 1, `${what}: the reply's region is mmapped`);
    assert.is(out.boundRx, 6, `${what}: max(4 RX, 6 TX) monitor RX rings`);
    assert.is(out.boundRings, 6, `${what}: the backend expects as many`);
    assert.is(out.boundTx, 0);
    assert.is(out.forwards, false, `${what}: a monitor never forwards to the host stack`);
    assert.is(out.received, 5);
    assert.is(out.bad, 0);
    assert.is(out.outside, 0, `${what}: frames lie inside the mapping`);
    assert.ok(out.closed && out.munmaps === 1, `${what}: closed and unmapped`);
  }
  // The encoding the host sends for each monitor form.
  assert.is(netmapRegisterFields(parsePortName('netmap:v0/r')).nrFlags, NR_FLAG.MONITOR_RX);
  assert.is(netmapRegisterFields(parsePortName('netmap:v0/rt')).nrFlags, NR_FLAG.MONITOR_RX | NR_FLAG.MONITOR_TX);
  assert.is(netmapRegisterFields(parsePortName('netmap:v0/z')).nrFlags, NR_FLAG.MONITOR_RX | NR_FLAG.MONITOR_TX | NR_FLAG.ZCOPY_MON);
});

test('a monitor of a port nobody holds in netmap mode: EINVAL from the register, fd closed', () => {
  const out = run(['monitor', String(NR_FLAG.MONITOR_RX), 'noparent']);
  assert.equal(out.failure, { syscall: 'ioctl', errno: 22, what: 'registering the port (NETMAP_REQ_REGISTER)' });
  assert.is(out.fake, 'not in netmap mode');
  assert.is(out.closed, true);
});

test('HOST verdict: NS_FORWARD on exactly those slots; the kernel forwards them at the next sync', () => {
  const out = run(['host']);
  assert.is(out.taken, 6);
  assert.equal(out.marked, [true, true, false]);
  assert.is(out.ringForward, true);
  assert.is(out.count, 2);
  assert.equal(out.forwarded, out.expected);
});

test('PASS to the kernel on one bypassed queue (eth0-2/R): NR_FORWARD on the ring, NS_FORWARD slots go up at the next sync', () => {
  const out = run(['host-one']);
  assert.is(out.taken, 6);
  assert.equal(out.marked, [true, true, false]);
  assert.is(out.ringForward, true, 'the hardware RX ring carries NR_FORWARD without the host rings bound');
  assert.is(out.count, 2);
  assert.equal(out.forwarded, out.expected);
});

test('TX: copies into TX slots (lengths, bytes), syncs and goes on when the ring fills', () => {
  const out = run(['tx']);
  assert.is(out.sent, 3);
  assert.equal(out.first, ['60:160', '1514:161', '200:162']);
  assert.is(out.more, 100);
  assert.is(out.burst, 300);
  assert.is(out.kernelSent, 403);
  assert.is(out.polls, 0, 'a ring the kernel empties at each sync is never waited on');
});

test('TX to a reader that is behind (a pipe): the sender waits for room with poll(POLLOUT) instead of dropping; a reader that never drains costs the rest, after a bounded wait', () => {
  const held = run(['tx'], { tx: 'held' });
  // Each poll lets the reader drain the 64-slot ring: every packet goes out.
  assert.is(held.sent, 3);
  assert.is(held.more, 100);
  assert.is(held.burst, 300);
  assert.is(held.kernelSent + held.queued, 403, 'taken by the reader or still queued in the ring');
  assert.ok(held.polls >= 6, `polls: ${held.polls}`);
  const stuck = run(['tx'], { tx: 'stuck' });
  // 63 usable slots (one stays empty), then every wait times out: the rest are the caller's output drops.
  assert.is(stuck.sent + stuck.more + stuck.burst, 63);
  assert.is(stuck.kernelSent, 0);
  assert.is(stuck.queued, 63);
  assert.ok(stuck.polls >= 1);
});

test('forwarding by buffer swap (one allocator): TX slots take the RX buffers with NS_BUF_CHANGED, the RX slots get the TX buffers back', () => {
  const out = run(['swap']);
  assert.is(out.sent, 4);
  assert.equal(out.txChanged, out.rxBufs, 'the frames leave in the very buffers they arrived in');
  assert.equal(out.rxChanged, out.txOld, 'the RX ring gets the TX ring\'s former buffers, flagged NS_BUF_CHANGED');
  assert.equal(out.firstBytes, [`100:${out.rxBufs[0] & 255}`, `103:${out.rxBufs[3] & 255}`], 'length and bytes as received');
});

test('no /dev/netmap: the open stage fails with ENOENT', () => {
  const out = run(['absent']);
  assert.equal(out.failure, { syscall: 'open', errno: 2, what: 'opening /dev/netmap' });
});

test('ring numbers out of range (-7 of 4, ^1 and ^3 of 1 host ring): ERANGE before any register, the undo closed /dev/netmap', () => {
  const cases: Array<[string, string]> = [
    ['netmap:eth0-7', 'eth0 has 4 rings, no -7: use -0..-3'],
    ['netmap:eth0^1', 'eth0 has 1 host ring, no ^1: use ^0..^0'],
    ['netmap:eth0^3/R', 'eth0 has 1 host ring, no ^3: use ^0..^0'],
  ];
  for (const [spec, what] of cases) {
    const out = register(spec);
    assert.equal(out.failure, { syscall: '', errno: 34, what }, spec);
    assert.is(out.registers, 0, `${spec}: the kernel never saw a register`);
    assert.is(out.closed, true, `${spec}: the fake saw close(fd)`);
  }
  assert.not.ok(register('netmap:eth0^0').failure, 'the one host ring is ^0');
});

test('packet memory against the 63 MiB window: one queue of 1024 slots fits, 16 queues of 4096 do not', () => {
  const window = 63 * 2 ** 20;
  const small = run(['size', '1', '1', '1024', '1', '1024']).bytes;
  // 2 rings of 1024 slots: 2048 + 2 buffers of 2 KiB, the rings, the guest ring.
  assert.ok(small > 2050 * 2048 && small < 2050 * 2048 + 200_000, `one queue: ${small}`);
  assert.ok(small <= window);
  assert.ok(run(['size', '16', '16', '4096', '16', '1024']).bytes > window);
});

/** netmap_mem_private_new (netmap 89607e1, netmap_mem2.c) for a VALE port as netmap_vale.c
 * creates it (npipes 2): the pools the donor's allocator gets. Written from netmap's source
 * here, independently of donorRequest. */
function netmapPrivatePools(txr: number, txd: number, rxr: number, rxd: number, extra: number): { rings: number; ringSize: number; bufs: number; ifSize: number } {
  const npipes = 2;
  txr++;
  rxr++; // the fake host rings
  const maxd = Math.max(txd, rxd);
  return {
    ifSize: Math.max(1024, 64 + 8 * (txr + rxr)),
    ringSize: Math.max(5 * 4096, 256 + 16 * maxd),
    rings: Math.max(4, txr + rxr + 8 * npipes),
    bufs: Math.max(4098, (4 * npipes + rxr) * rxd + (4 * npipes + txr) * txd + 2 + extra),
  };
}

test('allocator donor: a VALE port whose private allocator holds every ring of the NIC (or of two alike) beside its own 64-slot RX ring, and fits the window', () => {
  const window = 63 * 2 ** 20;
  // [tx rings, rx rings, host tx, host rx, tx slots, rx slots]: a veth, a 4-queue and a 16-queue NIC, 512..2048 slots.
  // [..., nics]: room for one interface, or for two alike (the second joins the first's donor: nic2nic by buffer swap).
  for (const [nics, ...nic] of [[1, 1, 1, 1, 1, 1024, 1024], [2, 1, 1, 1, 1, 1024, 1024], [1, 4, 4, 1, 1, 512, 512], [2, 4, 4, 1, 1, 1024, 1024], [1, 8, 8, 1, 1, 1024, 1024], [1, 16, 16, 1, 1, 512, 512], [1, 2, 2, 1, 1, 2048, 2048]] as number[][]) {
    const d = run(['donor', ...nic.map(String), String(nics)]);
    assert.ok(d.ok, `${nic}: ${JSON.stringify(d)}`);
    assert.is(d.rxSlots, 64);
    const pools = netmapPrivatePools(d.rings, d.txSlots, d.rings, d.rxSlots, d.extraBufs);
    const [txr, rxr, htx, hrx, txs, rxs] = nic as [number, number, number, number, number, number];
    const nicRings = nics! * (txr + rxr + htx + hrx);
    const nicBufs = nics! * (txs * (txr + htx) + rxs * (rxr + hrx));
    assert.ok(pools.rings >= nicRings + 1, `${nic}: ${pools.rings} ring objects for ${nicRings} + 1`);
    assert.ok(pools.ringSize >= 256 + 16 * Math.max(txs, rxs), `${nic}: ring objects of ${pools.ringSize} bytes`);
    assert.ok(pools.bufs >= nicBufs + 64 + 2, `${nic}: ${pools.bufs} buffers for ${nicBufs} + 64 + 2`);
    assert.ok(pools.ifSize >= 64 + 8 * nicRings);
    // The estimate covers netmap's pools (no more than a few pages over) and fits the window with a guest ring in front.
    const bytes = pools.rings * pools.ringSize + pools.bufs * 2048;
    assert.ok(d.bytes >= bytes && d.bytes < bytes + 256 * 1024, `${nic}: estimate ${d.bytes} against ${bytes}`);
    assert.ok(d.bytes + 1024 * 1024 <= window, `${nic}: ${d.bytes >> 20} MiB`);
  }
  // Beyond VALE's limits (4096 slots per ring): no donor, the caller falls back.
  assert.is(run(['donor', '1', '1', '1', '1', '8192', '8192']).ok, false);
});

test.run();

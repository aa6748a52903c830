// native/netmap/netmap_abi.h against netmap's header: builds test/native/netmap_abi_driver.cc with
// g++ and compares every size, offset, ioctl number and flag with the values written below.
// Source of the expected numbers: sys/net/netmap.h (NETMAP_API 14) — field types read by
// hand and laid out for LP64 (uint64_t/int64_t/ssize_t/struct timeval aligned to 8, sem
// aligned to NM_CACHE_ALIGN = 128); ioctls from Linux's _IOC encoding
// (dir << 30 | size << 16 | type << 8 | nr, dir 3 = read|write). The request encoded from a
// parsed port name (host/ports/portname.ts) is checked byte by byte.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parsePortName, netmapRegisterFields, NR_FLAG, NR_REG, type NetmapRegisterFields } from '../../host/ports/portname.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'nmwasm-abi-'));
const driver = join(dir, 'netmap_abi_driver');
execFileSync('g++', ['-std=c++17', '-O0', '-Wall', '-Wextra', '-Werror', '-I', join(root, 'native'), '-o', driver, join(root, 'test/native/netmap_abi_driver.cc')], { stdio: 'pipe' });
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

function run(f: NetmapRegisterFields): Record<string, any> {
  const args = [f.nrName, f.nrMode, f.nrRingid, f.nrFlags, f.nrMemId, f.txSlots, f.rxSlots, f.txRings, f.rxRings, f.hostTxRings, f.hostRxRings].map(String);
  return JSON.parse(execFileSync(driver, args, { encoding: 'utf8' }));
}
const out = run(netmapRegisterFields(parsePortName('eth0')));

const LAYOUT: Record<string, number> = {
  'sizeof.netmap_slot': 16, 'netmap_slot.buf_idx': 0, 'netmap_slot.len': 4, 'netmap_slot.flags': 6, 'netmap_slot.ptr': 8,
  'sizeof.netmap_ring': 256, 'netmap_ring.buf_ofs': 0, 'netmap_ring.num_slots': 8, 'netmap_ring.nr_buf_size': 12,
  'netmap_ring.ringid': 16, 'netmap_ring.dir': 18, 'netmap_ring.head': 20, 'netmap_ring.cur': 24, 'netmap_ring.tail': 28,
  'netmap_ring.flags': 32, 'netmap_ring.ts': 40, 'netmap_ring.offset_mask': 56, 'netmap_ring.buf_align': 64, 'netmap_ring.sem': 128,
  'sizeof.netmap_if': 56, 'netmap_if.ni_name': 0, 'netmap_if.ni_version': 16, 'netmap_if.ni_flags': 20, 'netmap_if.ni_tx_rings': 24,
  'netmap_if.ni_rx_rings': 28, 'netmap_if.ni_bufs_head': 32, 'netmap_if.ni_host_tx_rings': 36, 'netmap_if.ni_host_rx_rings': 40,
  'netmap_if.ni_spare1': 44,
  'sizeof.nmreq_option': 24, 'nmreq_option.nro_next': 0, 'nmreq_option.nro_reqtype': 8, 'nmreq_option.nro_status': 12, 'nmreq_option.nro_size': 16,
  'sizeof.nmreq_header': 88, 'nmreq_header.nr_version': 0, 'nmreq_header.nr_reqtype': 2, 'nmreq_header.nr_reserved': 4,
  'nmreq_header.nr_name': 8, 'nmreq_header.nr_options': 72, 'nmreq_header.nr_body': 80,
  'sizeof.nmreq_register': 56, 'nmreq_register.nr_offset': 0, 'nmreq_register.nr_memsize': 8, 'nmreq_register.nr_tx_slots': 16,
  'nmreq_register.nr_rx_slots': 20, 'nmreq_register.nr_tx_rings': 24, 'nmreq_register.nr_rx_rings': 26,
  'nmreq_register.nr_host_tx_rings': 28, 'nmreq_register.nr_host_rx_rings': 30, 'nmreq_register.nr_mem_id': 32,
  'nmreq_register.nr_ringid': 34, 'nmreq_register.nr_mode': 36, 'nmreq_register.nr_extra_bufs': 40, 'nmreq_register.nr_flags': 48,
  'sizeof.nmreq_port_info_get': 32, 'nmreq_port_info_get.nr_memsize': 0, 'nmreq_port_info_get.nr_tx_slots': 8,
  'nmreq_port_info_get.nr_rx_slots': 12, 'nmreq_port_info_get.nr_tx_rings': 16, 'nmreq_port_info_get.nr_rx_rings': 18,
  'nmreq_port_info_get.nr_host_tx_rings': 20, 'nmreq_port_info_get.nr_host_rx_rings': 22, 'nmreq_port_info_get.nr_mem_id': 24,
  'nmreq_port_info_get.pad': 26,
  'sizeof.nmreq_pools_info': 64, 'nmreq_pools_info.nr_mem_id': 8, 'nmreq_pools_info.nr_if_pool_offset': 16,
  'nmreq_pools_info.nr_ring_pool_offset': 32, 'nmreq_pools_info.nr_buf_pool_offset': 48, 'nmreq_pools_info.nr_buf_pool_objsize': 60,
  'sizeof.nmreq_opt_extmem': 96, 'nmreq_opt_extmem.nro_opt': 0, 'nmreq_opt_extmem.nro_usrptr': 24, 'nmreq_opt_extmem.nro_info': 32,
};

test('every size and field offset matches sys/net/netmap.h (API 14)', () => {
  for (const [key, value] of Object.entries(LAYOUT)) assert.is(out[key], value, key);
  // and nothing printed goes unchecked
  const printed = Object.keys(out).filter((k) => k.startsWith('sizeof.') || /^nm|^netmap_/.test(k));
  assert.equal(printed.sort(), Object.keys(LAYOUT).sort());
});

test('ioctl numbers: NIOCCTRL = _IOWR(i, 151, nmreq_header), NIOCTXSYNC/NIOCRXSYNC = _IO(i, 148/149)', () => {
  assert.is(out.NIOCCTRL, 0xc0586997);
  assert.is(out.NIOCTXSYNC, 0x6994);
  assert.is(out.NIOCRXSYNC, 0x6995);
  assert.is(out.NETMAP_API, 14);
});

test('flag and request-type values, and the TypeScript mirror of them', () => {
  assert.equal(out.NS, [0x1, 0x2, 0x4, 0x8, 0x10, 0x20, 0xff00]);
  assert.equal(out.NR_REG, [0, 1, 2, 3, 4, 5, 6, 7, 8]);
  assert.equal(out.NR_FLAGS, [0x100, 0x200, 0x400, 0x800, 0x2000, 0x4000, 0x8000, 0x10000, 0x20000]);
  assert.equal(out.REQ, [1, 2, 12, 15]);
  assert.equal(out.OPT, [1, 5]);
  assert.equal([NR_REG.ALL_NIC, NR_REG.SW, NR_REG.NIC_SW, NR_REG.ONE_NIC, NR_REG.ONE_SW], [out.NR_REG[1], out.NR_REG[2], out.NR_REG[3], out.NR_REG[4], out.NR_REG[8]]);
  assert.equal(
    [NR_FLAG.MONITOR_TX, NR_FLAG.MONITOR_RX, NR_FLAG.ZCOPY_MON, NR_FLAG.EXCLUSIVE, NR_FLAG.RX_RINGS_ONLY, NR_FLAG.TX_RINGS_ONLY],
    out.NR_FLAGS.slice(0, 6),
  );
});

/** Little-endian hex of `value` in `bytes` bytes. */
function le(value: number, bytes: number): string {
  let hex = '';
  for (let i = 0; i < bytes; i++) hex += (Math.floor(value / 2 ** (8 * i)) & 0xff).toString(16).padStart(2, '0');
  return hex;
}
function expectedHeader(name: string): string {
  const nameHex = Buffer.from(name).toString('hex').padEnd(128, '0');
  return le(14, 2) + le(1, 2) + le(0, 4) + nameHex;
}
function expectedRegister(f: NetmapRegisterFields): string {
  return (
    le(0, 8) + le(0, 8) + le(f.txSlots, 4) + le(f.rxSlots, 4) + le(f.txRings, 2) + le(f.rxRings, 2) + le(f.hostTxRings, 2) + le(f.hostRxRings, 2) +
    le(f.nrMemId, 2) + le(f.nrRingid, 2) + le(f.nrMode, 4) + le(0, 4) + le(0, 4) /* padding */ + le(f.nrFlags, 8)
  );
}

const ENCODED: Array<[string, Partial<NetmapRegisterFields>]> = [
  ['eth0', { nrName: 'eth0', nrMode: 1, nrRingid: 0, nrFlags: 0 }],
  ['eth0-2/R', { nrName: 'eth0', nrMode: 4, nrRingid: 2, nrFlags: 0x2000 }],
  ['netmap:eth0^', { nrName: 'eth0', nrMode: 2, nrRingid: 0, nrFlags: 0 }],
  ['eth0^1/x', { nrName: 'eth0', nrMode: 8, nrRingid: 1, nrFlags: 0x800 }],
  ['eth0*/T@3', { nrName: 'eth0', nrMode: 3, nrFlags: 0x4000, nrMemId: 3 }],
  ['eth0-4094/rtz', { nrName: 'eth0', nrMode: 4, nrRingid: 4094, nrFlags: 0x700 }],
  ['vale0:v0/z', { nrName: 'vale0:v0', nrMode: 1, nrFlags: 0x700 }], // the kernel adds MONITOR_RX|TX to ZCOPY_MON anyway
  ['netmap:a+b-1', { nrName: 'a+b', nrMode: 4, nrRingid: 1 }],
  ['vale0:p1@conf:rings=4,slots=1024', { nrName: 'vale0:p1', nrMode: 1, txRings: 4, rxRings: 4, txSlots: 1024, rxSlots: 1024 }],
  ['eth0{7-1', { nrName: 'eth0{7', nrMode: 4, nrRingid: 1 }],
  ['eth0}7@conf:host-tx-rings=2,rx-slots=4096', { nrName: 'eth0}7', nrMode: 1, hostTxRings: 2, rxSlots: 4096 }],
];

test('a parsed port name encodes into the exact NETMAP_REQ_REGISTER bytes', () => {
  for (const [spec, want] of ENCODED) {
    const fields = netmapRegisterFields(parsePortName(spec));
    for (const [key, value] of Object.entries(want)) assert.is(fields[key as keyof NetmapRegisterFields], value, `${spec}: ${key}`);
    const got = run(fields);
    assert.ok(got.ok, spec);
    assert.ok(got.bodyIsReg, `${spec}: nr_body points at the register body`);
    assert.ok(got.optionsZero, `${spec}: no options`);
    assert.is(got.header, expectedHeader(fields.nrName), `${spec}: header bytes`);
    assert.is(got.register, expectedRegister(fields), `${spec}: register bytes`);
  }
});

test('extmem option pushed on the list; port-info request; names that do not fit nr_name are refused', () => {
  assert.equal(out.extmem, { pushed: true, next: 0, type: 1, memsize: 4096, usrptrOk: true });
  assert.equal(out.info, { ok: true, reqtype: 2, version: 14 });
  const long = run({ ...netmapRegisterFields(parsePortName('eth0')), nrName: 'x'.repeat(64) });
  assert.is(long.ok, false);
  assert.is(long.info.ok, false);
  const max = run({ ...netmapRegisterFields(parsePortName('eth0')), nrName: 'y'.repeat(63) });
  assert.is(max.ok, true);
  assert.is(max.header, expectedHeader('y'.repeat(63)));
});

test.run();

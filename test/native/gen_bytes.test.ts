// gen: byte for byte: the frames (bytes, lengths, timestamps) of a few option sets hash to
// what the generator made before its fill loop was rebuilt on pre-built (flow, length)
// frames (digests taken from the per-flow generator of commit 866d9ab, main's build). A change of any
// byte a gen: option produces fails here; a deliberate change of the traffic updates them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { genSpec, native, newCounters, GuestRing } from './helpers.ts';

type Over = Parameters<typeof genSpec>[0];

/** sha256 over ring `ring`'s frames: per frame its length, timestamp and bytes. A scribbling
 * verdict function writes into every buffer it sees (the generator must rewrite it all). */
function digest(over: Over, ring = 0, numSlots = 256): string {
  const spec = genSpec(over);
  const port = native.openPort(spec, { numSlots, bufSize: 2048 });
  const handle = native.attachRing(port.id, ring, { outputs: [], counters: newCounters(), faultVerdict: 0, trace: false });
  const g = new GuestRing(handle);
  const h = createHash('sha256');
  let frames = 0;
  let n = handle.sync(0, false);
  while (n > 0) {
    for (const i of g.batchSlots(n)) {
      const pkt = g.packet(i);
      const head = Buffer.alloc(12);
      head.writeUInt32LE(pkt.length, 0);
      head.writeBigUInt64LE(g.ts(i), 4);
      h.update(head);
      h.update(pkt);
      frames++;
      const bufOfs = Number(g.dv().getBigInt64(g.ring, true));
      const start = g.ring + bufOfs + g.bufIdx(i) * g.layout.bufSize;
      g.view().fill(0xa5, start, start + g.layout.bufSize - 64);
      g.setVerdict(i, 1);
    }
    n = handle.sync(n, false);
  }
  handle.detach();
  native.closePort(port.id);
  return `${frames} ${h.digest('hex')}`;
}

const DEFAULT_MIX: [number, number, number, number, number, number, number] = [40, 30, 5, 10, 10, 3, 2];
const cases: [string, Over, number?][] = [
  ['gen: (64 B, 16 flows, the default mix), past the schedule and the 16-bit id', { count: 70000, sizeMin: 64, sizeMax: 64, flows: 16, mix: DEFAULT_MIX }],
  ['seq, 64 B', { count: 20000, sizeMin: 64, sizeMax: 64, flows: 16, mix: DEFAULT_MIX, seq: true, seed: 5 }],
  ['imix, every protocol', { count: 20000, imix: true, sizeMax: 1518, flows: 64, seed: 9 }],
  ['imix, seq', { count: 20000, imix: true, sizeMax: 1518, flows: 64, seq: true, seed: 2 }],
  ['size=60-1000, seq (odd and even trailers)', { count: 20000, sizeMin: 60, sizeMax: 1000, flows: 64, seq: true, seed: 3 }],
  ['size=64-80, 1000 flows', { count: 30000, sizeMin: 64, sizeMax: 80, flows: 1000, seed: 4 }],
  ['udp4 only, 64 B (zero UDP checksums sent as 0xFFFF)', { count: 20000, sizeMin: 64, sizeMax: 64, flows: 4096, mix: [0, 1, 0, 0, 0, 0, 0], seed: 11 }],
  ['arp and icmp6 only, seq', { count: 5000, sizeMin: 64, sizeMax: 128, flows: 8, mix: [0, 0, 0, 0, 0, 1, 1], seq: true, seed: 6 }],
  ['udp4, icmp4 and arp, 64 B, seq (short frames with the trailer)', { count: 20000, sizeMin: 64, sizeMax: 64, flows: 32, mix: [0, 3, 2, 0, 0, 0, 1], seq: true, seed: 12 }],
  ['tcp4 and icmp6, size=64-90 (frames on both sides of 80 bytes)', { count: 20000, sizeMin: 64, sizeMax: 90, flows: 8, mix: [1, 0, 0, 0, 0, 1, 0], seed: 13 }],
  ['rings=2, seq: ring 0', { count: 20000, sizeMin: 64, sizeMax: 64, flows: 16, mix: DEFAULT_MIX, seq: true, rings: 2, seed: 1 }, 0],
  ['rings=2, seq: ring 1', { count: 20000, sizeMin: 64, sizeMax: 64, flows: 16, mix: DEFAULT_MIX, seq: true, rings: 2, seed: 1 }, 1],
];

const expected: Record<string, string> = {
  "gen: (64 B, 16 flows, the default mix), past the schedule and the 16-bit id": '70000 ff43fca5157a3da1b22e2300b9afbd1727daec7f24bc1912b69ccd210e601170',
  "seq, 64 B": '20000 25da9db1cde16d29ce3ed20b0fc756de8f8b55f4264c73e8bf283da9d6c2c3ed',
  "imix, every protocol": '20000 2e42e28d98b9a0acae476df9b8813644f16deb6892a39bbdfbeb2f4ceb7ec5b7',
  "imix, seq": '20000 194fff11e3424c5b7cad3e91138049223ab43f59d807b203149b48649bb3cef7',
  "size=60-1000, seq (odd and even trailers)": '20000 c066c60d9a21a7c58dc0f1e8b307ce1fb610819adadcdc8c8f3bdd5d6012ff5b',
  "size=64-80, 1000 flows": '30000 d8dc52055a0d50c630e8d4c15dd21f154b6e4a35bab9f987641d3864fe1f414b',
  "udp4 only, 64 B (zero UDP checksums sent as 0xFFFF)": '20000 7c8d3f91ca88ccbb8a03ffb0d7512a0b2474717ed5e56acde5a00e9a70427dc3',
  "arp and icmp6 only, seq": '5000 a0819ea151a8962e552be13d97671ec46649766b970ce6d9b9c9affaf2df316b',
  "udp4, icmp4 and arp, 64 B, seq (short frames with the trailer)": '20000 31c216e865df1e862ad9b617c3c868426c3044457086e0a84a21235baac0537b',
  "tcp4 and icmp6, size=64-90 (frames on both sides of 80 bytes)": '20000 2419a8c93c4804243b6b5b19a56ce2bfd56e2181966b7360259ae963d8a3715d',
  "rings=2, seq: ring 0": '5400 031cb6502ceb9e5cb320da08d1af653c0565d9b4073f22bfba3d9e7152dbe93c',
  "rings=2, seq: ring 1": '14600 d44630f05c1dfaa5b82e2ae3f7b3ec5cfcc1d783e0040b60286ea23afa70f504',
};

for (const [name, over, ring] of cases) {
  test(`same bytes as before: ${name}`, () => {
    const got = digest(over, ring ?? 0);
    if (process.env.GEN_DIGESTS) console.log(`  ${JSON.stringify(name)}: '${got}',`);
    else assert.is(got, expected[name], name);
  });
}

test.run();

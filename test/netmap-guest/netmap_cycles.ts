// Guest-only helper (test/netmap-guest/netmap-guest-tests.sh, "reopen"): opens and closes each netmap
// port named on the command line 20 times through the addon, as the CLI does (register, map
// netmap's region, unregister), without a filter, so the count shows netmap's side alone.
// Needs /dev/netmap: npm test does not run it. Prints one line per port:
//   CYCLES <port>: <ok>/20 [first error]
import { loadNative } from '../../host/ports/native.ts';
import { netmapRegisterFields, parsePortName } from '../../host/ports/portname.ts';

const native = loadNative();
for (const spec of process.argv.slice(2)) {
  let ok = 0;
  let first = '';
  for (let i = 0; i < 20; i++) {
    try {
      const port = native.openPort({ kind: 'netmap', name: spec, ...netmapRegisterFields(parsePortName(spec)), rx: true, tx: false }, { numSlots: 1024, bufSize: 2048 });
      native.closePort(port.id);
      ok++;
    } catch (err) {
      if (!first) first = `${(err as { code?: string }).code}: ${(err as Error).message}`;
    }
  }
  console.log(`CYCLES ${spec}: ${ok}/20${first ? ` first error: ${first}` : ''}`);
}

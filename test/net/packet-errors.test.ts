// Live-port refusals: unknown interface, interface down, queue out of range, no privilege
// (run as the unprivileged user nobody), backend not built. Each is one line on stderr and
// exit status 2.
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { test } from 'uvu';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { cli, ensureBundle, root } from '../cli/helpers.ts';
import { loadNative } from '../../host/ports/native.ts';
import { isRoot, NetLab, rootTest } from './netlab.ts';

const t = rootTest();
const lab = new NetLab('ne');
const pass = join(root, 'filters/build/fixtures/pass.wasm');

/** Runs nmwasm (optionally inside a namespace or as another user) and checks: exit 2, one line matching `pattern`. */
function refuses(prefix: string[], args: string[], pattern: RegExp): void {
  const argv = [...prefix, process.execPath, cli, 'load', pass, ...args];
  const res = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 30_000, cwd: '/' });
  const lines = res.stderr.split('\n').filter((l) => l.length > 0);
  assert.is(res.status, 2, `${args.join(' ')}: exit ${res.status}, stderr: ${res.stderr}`);
  assert.is(lines.length, 1, `${args.join(' ')}: expected one line, got: ${res.stderr}`);
  assert.match(lines[0]!, pattern);
}

test('unknown interface (no root needed: refused at the edge)', () => {
  ensureBundle();
  refuses([], ['--port', 'packet:nmwnoif0'], /--port "packet:nmwnoif0": no interface named "nmwnoif0"/);
  refuses([], ['--port', 'nmwnoif0-1/R'], /no interface named "nmwnoif0"/);
  refuses([], ['--port', 'packet:lo', '--to', 'packet:nmwnoif1'], /--to "packet:nmwnoif1": no interface named "nmwnoif1"/);
});

t('interface down', () => {
  const ns = lab.ns('d');
  const dev = `${lab.tag}dn`;
  lab.exec(ns, 'ip', ['link', 'add', 'dev', dev, 'type', 'veth', 'peer', 'name', `${dev}p`]); // both ends created down
  refuses(['ip', 'netns', 'exec', ns], ['--port', `packet:${dev}`], new RegExp(`interface ${dev} is down \\(bring it up: ip link set ${dev} up\\)`));
});

test('queue out of range (no root needed)', () => {
  refuses([], ['--port', 'packet:lo-3'], /--port "packet:lo-3": queue 3 is out of range: lo has 1 RX queue\(s\)/);
});

test('no privilege: run as nobody', () => {
  const asNobody = isRoot ? ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups'] : []; // already unprivileged
  refuses(asNobody, ['--port', 'packet:lo'], /packet:lo.*AF_PACKET needs root or CAP_NET_RAW.*\(EPERM/);
});

test('backend not built: xdp: without AF_XDP in the addon', () => {
  if (loadNative().backends().includes('xdp')) {
    // This addon has AF_XDP: the refusal cannot happen here; netmap (never built on Linux without the module) stands in.
    refuses([], ['--port', 'netmap:lo'], /netmap/);
    return;
  }
  refuses([], ['--port', 'xdp:lo'], /"xdp:lo": xdp: was asked for, but AF_XDP .* AF_PACKET is available \(packet:lo\)/);
});

test('netmap: without /dev/netmap: one line, the module is not loaded, xdp:eth0 suggested', () => {
  if (existsSync('/dev/netmap')) return; // the module is loaded here: nothing to refuse
  const alt = loadNative().backends().includes('xdp') ? 'xdp:eth0' : 'packet:eth0';
  refuses([], ['--port', 'netmap:eth0'], new RegExp(`"netmap:eth0": netmap: was asked for, but /dev/netmap is absent \\(the netmap kernel module is not loaded\\).*\\(${alt}\\)`));
});

test.after(() => lab.cleanup());

test.run();

// A veth pair between two network namespaces for the root-only benchmarks (bench/pass-kernel.mjs,
// bench/xdp-fast.mjs): names carry the pid, and finish() removes the namespaces (and with them
// the veth and any XDP program on it), the children and the temporary directories.
import { execFileSync, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';

/** The lab of tag `prefix` + pid: namespaces `<tag>s` (sender) and `<tag>r` (receiver), veth
 * ends `<tag>a` (in s) and `<tag>b` (in r, 02:00:00:00:00:02, 10.0.0.2/24). Nothing is created
 * before setup(). */
export function vethLab(prefix) {
  const tag = `${prefix}${process.pid % 10000}`;
  const [nsS, nsR, devA, devB] = [`${tag}s`, `${tag}r`, `${tag}a`, `${tag}b`];
  const children = new Set();
  const tempDirs = [];

  /** Ends the process with `code` after removing everything the lab made. */
  function finish(code) {
    for (const child of children) child.kill('SIGTERM');
    for (const ns of [nsS, nsR]) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
    process.exit(code);
  }

  /** One line on stderr, then finish(1). */
  function die(message) {
    process.stderr.write(`bench: ${message}\n`);
    finish(1);
  }

  /** Runs `cmd argv` to its end; its stdout (throws on a failure). */
  function sh(cmd, argv) {
    return execFileSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  }

  /** Namespaces (IPv6 off), the veth pair, both ends up with `offloads` (ethtool -K words) set. */
  function setup(offloads) {
    for (const ns of [nsS, nsR]) {
      sh('ip', ['netns', 'add', ns]);
      sh('ip', ['netns', 'exec', ns, 'sh', '-c', 'echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6; echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6']);
    }
    sh('ip', ['link', 'add', 'dev', devA, 'type', 'veth', 'peer', 'name', devB]);
    sh('ip', ['link', 'set', 'dev', devA, 'netns', nsS]);
    sh('ip', ['link', 'set', 'dev', devB, 'netns', nsR]);
    sh('ip', ['-n', nsR, 'link', 'set', 'dev', devB, 'address', '02:00:00:00:00:02']);
    sh('ip', ['-n', nsR, 'addr', 'add', '10.0.0.2/24', 'dev', devB]);
    for (const [ns, dev] of [[nsS, devA], [nsR, devB]]) {
      sh('ip', ['-n', ns, 'link', 'set', 'dev', dev, 'up']);
      spawnSync('ip', ['netns', 'exec', ns, 'ethtool', '-K', dev, ...offloads], { stdio: 'ignore' });
    }
  }

  return { nsS, nsR, devA, devB, children, tempDirs, finish, die, sh, setup };
}

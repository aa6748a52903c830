// Exit status and one-line form of the netmap register errors the addon throws
// (native/netmap/port_netmap.cc): a region too big for the window or a pool that ran out
// (ENETMAP_MEM) and a ring number out of range (ERANGE) are the user's to fix: exit 2.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { describeError, exitCodeOf } from '../../host/cli/errors.ts';

function nativeError(code: string, message: string, syscall = '', errno?: number): Error {
  return Object.assign(new Error(message), { code, port: 'netmap:v0', syscall, errno });
}

test('a netmap region too big for the window (ENETMAP_MEM) exits 2 with one line naming buf_num', () => {
  const e = nativeError(
    'ENETMAP_MEM',
    "netmap's memory region for v0 (allocator 1) is 327 MiB, more than the 63 MiB packet window holds (its buffer pool: 163840 buffers of 2048 bytes); " +
      'this netmap lacks extmem (built without --enable-extmem): lower netmap\'s global buffer pool with no netmap port open (echo 24576 > /sys/module/netmap/parameters/buf_num), or build netmap with --enable-extmem',
    'ioctl',
    0,
  );
  assert.is(exitCodeOf(e), 2);
  const line = describeError(e);
  assert.not.match(line, /\n/);
  assert.match(line, /^netmap:v0: netmap's memory region for v0 .*buf_num.* \(ENETMAP_MEM, ioctl errno 0\)$/);
});

test('a netmap pool that ran out (ENETMAP_MEM with errno ENOMEM) exits 2', () => {
  assert.is(exitCodeOf(nativeError('ENETMAP_MEM', 'registering the port failed: netmap ran out of memory objects ...', 'ioctl', 12)), 2);
});

test('a host ring out of range (ERANGE, said before the kernel) exits 2', () => {
  const e = nativeError('ERANGE', 'v0 has 1 host ring, no ^7: use ^0..^0');
  assert.is(exitCodeOf(e), 2);
  assert.is(describeError(e), 'netmap:v0: v0 has 1 host ring, no ^7: use ^0..^0 (ERANGE)');
});

test('a runtime failure of the same port (EIO) still exits 1', () => {
  assert.is(exitCodeOf(nativeError('EIO', 'poll failed', 'poll', 5)), 1);
});

test.run();

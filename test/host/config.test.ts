// --config reading (host/module/config.ts): limits and one-line errors.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readConfig } from '../../host/module/config.ts';
import { UsageError } from '../../host/cli/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'nmwasm-config-'));

test('no --config gives 0 bytes', () => {
  assert.is(readConfig(undefined).length, 0);
});

test('a file is read as bytes, up to exactly 960 KiB', () => {
  const file = join(dir, 'rules.txt');
  writeFileSync(file, 'pass tcp\n');
  assert.equal(new TextDecoder().decode(readConfig(file)), 'pass tcp\n');
  const max = join(dir, 'max.bin');
  writeFileSync(max, new Uint8Array(0xf0000).fill(7));
  const bytes = readConfig(max);
  assert.is(bytes.length, 0xf0000);
  assert.is(bytes[0xeffff], 7);
});

test('missing, directory, too large, unreadable, empty name', () => {
  const cases: [string, RegExp][] = [
    [join(dir, 'missing.rules'), /--config .*missing\.rules: cannot read the file \(no such file\)/],
    [dir, /expected a regular file, got a directory/],
    ['', /--config: expected a file name, got an empty string/],
  ];
  const big = join(dir, 'big.bin');
  writeFileSync(big, new Uint8Array(0xf0001));
  cases.push([big, /file too large \(expected at most 983040 bytes = 960 KiB, got 983041\)/]);
  if (process.getuid?.() !== 0) {
    const secret = join(dir, 'secret');
    writeFileSync(secret, 'x');
    chmodSync(secret, 0);
    cases.push([secret, /permission denied/]);
  }
  for (const [path, pattern] of cases) {
    try {
      readConfig(path);
      assert.unreachable(`${path} accepted`);
    } catch (err) {
      assert.instance(err, UsageError);
      assert.match((err as Error).message, pattern);
    }
  }
});

test.run();

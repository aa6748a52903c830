// --out never destroys what is at its path, never writes its input, and loses nothing
// silently (spawning the bundled CLI, dist/nmwasm.mjs, as root):
//  - device nodes (mknod copies of /dev/null and /dev/full), FIFOs, directories, block
//    devices: written through or refused at start, never replaced by a regular file;
//  - a symbolic link: its target is written, the link stays;
//  - the input as output (same name, hard link, symbolic link; `test` and `load`): refused,
//    the input is byte-identical afterwards;
//  - a full disk (a 200 KiB tmpfs): exit 1 with one line when the write fails, and the file
//    holds a valid capture of what was written (capinfos);
//  - SIGHUP commits like SIGTERM; a SIGKILLed run's temp file is findable by its name and
//    removed by the next run with the same target;
//  - a capture truncated while it is read: one line, exit 2, no SIGBUS.
// The device and tmpfs cases need root (mknod, mount).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { closeSync, constants, existsSync, linkSync, lstatSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ensureBundle, fixtures, pcaps, pcapRecords, runCli, startCli } from './helpers.ts';
import { rootTest } from '../net/netlab.ts';

// mknod and mount need root (skipped otherwise; a failure under CI=true, as test/net).
const asRoot = rootTest();

ensureBundle();
const dir = mkdtempSync(join(tmpdir(), 'nmwasm-outsafe-'));
const pass = join(fixtures, 'pass.wasm');
const input = join(dir, 'in.pcap');
writeFileSync(input, readFileSync(join(pcaps, 'babel_rfc6126bis.pcap')));
const inputBytes = readFileSync(input);

function sh(cmd: string, args: string[]): void {
  const res = spawnSync(cmd, args, { encoding: 'utf8' });
  assert.is(res.status, 0, `${cmd} ${args.join(' ')}: ${res.stderr}`);
}
/** The one error line of a run (start-up lines saying where PASS and DROP go are not errors). */
function oneLine(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l.length > 0 && !l.startsWith('log: ') && !/: PASS -> .*, DROP -> |: output of /.test(l));
  assert.is(lines.length, 1, `expected one line on stderr, got:\n${stderr}`);
  return lines[0]!;
}
function capinfosCount(file: string): number {
  const res = spawnSync('capinfos', ['-T', '-r', '-c', file], { encoding: 'utf8' });
  assert.is(res.status, 0, `capinfos ${file}: ${res.stderr}`);
  return Number(res.stdout.trim().split('\t')[1]);
}
const waitFor = async (what: string, ok: () => boolean): Promise<void> => {
  for (let i = 0; i < 3000 && !ok(); i++) await sleep(10);
  assert.ok(ok(), `timed out waiting for ${what}`);
};

// ---- what is at the path -----------------------------------------------------------------

asRoot('a character device is written through and stays a device (copies of /dev/null, /dev/full)', () => {
  const nul = join(dir, 'null');
  const full = join(dir, 'full');
  sh('mknod', [nul, 'c', '1', '3']);
  sh('mknod', [full, 'c', '1', '7']);
  const ok = runCli(['test', pass, '--pcap', input, '--out', nul]);
  assert.is(ok.status, 0, ok.stderr);
  assert.ok(lstatSync(nul).isCharacterDevice(), '/dev/null copy is still a character device');
  const res = runCli(['test', pass, '--pcap', input, '--out', full]);
  assert.is(res.status, 2, res.stderr);
  assert.match(oneLine(res.stderr), /full: cannot write output pcap: No space left on device.*\(ENOSPC, write errno 28\)/);
  assert.ok(lstatSync(full).isCharacterDevice(), '/dev/full copy is still a character device');
  assert.equal(readdirSync(dir).filter((f) => f.includes('nmwasm-')), [], 'no temp file');
});

test('a FIFO is written through (its reader gets a valid capture); without a reader it is refused at start', async () => {
  const fifo = join(dir, 'fifo');
  sh('mkfifo', [fifo]);
  const refused = runCli(['test', pass, '--pcap', input, '--out', fifo]);
  assert.is(refused.status, 2);
  assert.match(oneLine(refused.stderr), /fifo: cannot open output: .*a FIFO with no reader: start the program that reads it first.*\(ENXIO/);
  assert.ok(lstatSync(fifo).isFIFO());
  // A reader: cat copies the stream into a file.
  const copy = join(dir, 'from-fifo.pcap');
  const cat = startCatFifo(fifo, copy);
  await sleep(0);
  await waitFor('cat to open the FIFO', () => existsSync(copy));
  const res = runCli(['test', pass, '--pcap', input, '--out', fifo]);
  assert.is(res.status, 0, res.stderr);
  await cat;
  assert.ok(lstatSync(fifo).isFIFO(), 'the FIFO is still a FIFO');
  assert.is(capinfosCount(copy), pcapRecords(input));
});

function startCatFifo(fifo: string, copy: string): Promise<void> {
  return new Promise((resolve, reject) => {
    import('node:child_process').then(({ spawn }) => {
      const child = spawn('sh', ['-c', `exec cat "$0" > "$1"`, fifo, copy]);
      child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`cat exited ${code}`))));
    }, reject);
  });
}

asRoot('a directory, a block device and a dangling symbolic link are refused at start, untouched', () => {
  const d = join(dir, 'a-dir');
  mkdirSync(d);
  const blk = join(dir, 'blk');
  sh('mknod', [blk, 'b', '7', '200']);
  const dangling = join(dir, 'dangling.pcap');
  symlinkSync(join(dir, 'nowhere', 'x.pcap'), dangling);
  for (const [target, re] of [[d, /a-dir: is a directory/], [blk, /blk: is a block device/], [dangling, /dangling\.pcap: .*a symbolic link that leads to no file/]] as const) {
    const res = runCli(['load', pass, '--port', 'gen:count=100', '--out', `pcap:${target}`]);
    assert.is(res.status, 2, res.stderr);
    assert.match(oneLine(res.stderr), re);
  }
  assert.ok(lstatSync(d).isDirectory());
  assert.ok(lstatSync(blk).isBlockDevice());
  assert.ok(lstatSync(dangling).isSymbolicLink());
  assert.equal(readdirSync(dir).filter((f) => f.includes('nmwasm-')), [], 'no temp file');
});

test('a symbolic link to a regular file: the file it leads to is written, the link stays a link', () => {
  const real = join(dir, 'real.pcap');
  writeFileSync(real, 'old content');
  const link = join(dir, 'link.pcap');
  symlinkSync('real.pcap', link);
  const res = runCli(['load', pass, '--port', 'gen:count=100', '--out', `pcap:${link}`]);
  assert.is(res.status, 0, res.stderr);
  assert.ok(lstatSync(link).isSymbolicLink(), 'the link is still a link');
  assert.is(capinfosCount(real), 100);
});

// ---- the input is never the output --------------------------------------------------------

test('the input as output is refused at start (same name, hard link, symbolic link; test and load); the input is unchanged', () => {
  const hard = join(dir, 'hard.pcap');
  linkSync(input, hard);
  const soft = join(dir, 'soft.pcap');
  symlinkSync(input, soft);
  const runs = [
    ['test', pass, '--pcap', input, '--out', input],
    ['test', pass, '--pcap', input, '--out', hard],
    ['test', pass, '--pcap', soft, '--out', input],
    ['load', pass, '--port', `pcap:${input}`, '--out', `pcap:${input}`],
    ['load', pass, '--port', `pcap:${input}`, '--out', `pcap:${soft}`],
    ['load', pass, '--port', 'gen:count=10', '--out', `pcap:${input}`, '+', pass, '--port', `pcap:${hard}`],
  ];
  for (const args of runs) {
    const res = runCli(args);
    assert.is(res.status, 2, `${args.join(' ')}: ${res.stderr}`);
    assert.match(oneLine(res.stderr), /an output never overwrites its input: write to another file \(ESAMEFILE\)/);
    assert.equal(readFileSync(input), inputBytes, `${args.join(' ')}: the input is unchanged`);
  }
  assert.equal(readdirSync(dir).filter((f) => f.includes('nmwasm-')), [], 'no temp file');
});

test('two outputs of one run to the same file are refused at start', () => {
  const out = join(dir, 'twice.pcap');
  const res = runCli(['load', pass, '--port', 'gen:count=10', '--out', `pcap:${out}`, '+', pass, '--port', 'gen:count=10', '--out', `pcap:${out}`]);
  assert.is(res.status, 2, res.stderr);
  assert.match(oneLine(res.stderr), /twice\.pcap: is also the file of the output pcap:.*twice\.pcap; give each output its own file \(ESAMEFILE\)/);
  assert.not.ok(existsSync(out));
  assert.equal(readdirSync(dir).filter((f) => f.includes('nmwasm-')), [], 'no temp file');
});

// ---- a full disk ----------------------------------------------------------------------------

asRoot('a full disk ends the run with exit 1 and one line; what was written is a valid capture', () => {
  const mnt = join(dir, 'small');
  mkdirSync(mnt);
  sh('mount', ['-t', 'tmpfs', '-o', 'size=200k', 'tmpfs', mnt]);
  try {
    const out = join(mnt, 'o.pcap');
    // 5000 frames of 1000 bytes (5 MB) into 200 KiB.
    const res = runCli(['load', pass, '--port', 'gen:count=5000,size=1000', '--out', `pcap:${out}`]);
    assert.is(res.status, 1, res.stderr);
    const line = oneLine(res.stderr);
    const m = /o\.pcap: cannot write output pcap: No space left on device after (\d+) packets; the \1 packets written are kept as a valid capture; free space or choose another path \(ENOSPC, write errno 28\)/.exec(line);
    assert.ok(m, line);
    const written = Number(m![1]);
    assert.ok(written > 0 && written < 5000, `${written} packets written`);
    assert.is(capinfosCount(out), written, 'capinfos reads every packet the message counts');
    assert.is(pcapRecords(out), written);
    assert.equal(readdirSync(mnt), ['o.pcap'], 'no temp file left');
  } finally {
    sh('umount', [mnt]);
  }
});

// ---- signals and leftovers ------------------------------------------------------------------

/** Starts an endless run writing pcap:OUT and waits until its temp file holds a batch. */
async function startEndless(out: string): Promise<{ child: ReturnType<typeof startCli>['child']; done: ReturnType<typeof startCli>['done']; temp: string }> {
  const run = startCli(['load', pass, '--port', 'gen:size=64', '--out', `pcap:${out}`]);
  const base = out.slice(out.lastIndexOf('/') + 1);
  const temp = join(out.slice(0, out.lastIndexOf('/')), `.${base}.nmwasm-${run.child.pid}.tmp`);
  await waitFor(`${temp} with a batch in it`, () => existsSync(temp) && statSync(temp).size > 24);
  return { ...run, temp };
}

test('SIGHUP stops like SIGTERM: exit 0, the output is committed, no temp file', async () => {
  const d = join(dir, 'hup');
  mkdirSync(d);
  const out = join(d, 'o.pcap');
  const run = await startEndless(out);
  run.child.kill('SIGHUP');
  const res = await run.done;
  assert.is(res.status, 0, `status ${res.status}: ${res.stderr}`);
  assert.equal(readdirSync(d), ['o.pcap']);
  const outPackets = Number(/out: (\d+) packets/.exec(res.stdout)![1]);
  assert.ok(outPackets > 0);
  assert.is(capinfosCount(out), outPackets, 'every packet counted as out is in the file');
});

test('a SIGKILLed run leaves .NAME.nmwasm-PID.tmp; the next run with the same target removes it and says so', async () => {
  const d = join(dir, 'kill');
  mkdirSync(d);
  const out = join(d, 'o.pcap');
  const run = await startEndless(out);
  run.child.kill('SIGKILL');
  await run.done;
  assert.ok(existsSync(run.temp), 'the leftover is where its name says');
  // A live process's temp file is not touched: this test's own pid.
  const live = join(d, `.o.pcap.nmwasm-${process.pid}.tmp`);
  writeFileSync(live, 'in use');
  const res = runCli(['load', pass, '--port', 'gen:count=10', '--out', `pcap:${out}`]);
  assert.is(res.status, 0, res.stderr);
  assert.match(res.stderr, /o\.pcap: removed 1 temp file\(s\) left beside it by runs that ended without committing/);
  assert.not.ok(existsSync(run.temp), 'the leftover is gone');
  assert.ok(existsSync(live), 'the temp file of a running process stays');
  assert.is(capinfosCount(out), 10);
  rmSync(live);
});

// ---- an input that shrinks ------------------------------------------------------------------

test('a capture truncated while it is read: one line, exit 2, no SIGBUS', async () => {
  // 6000 frames of 1000 bytes (6 MB, many times the reader's 320 KiB buffer), written by nmwasm.
  const big = join(dir, 'big.pcap');
  const made = runCli(['load', pass, '--port', 'gen:count=6000,size=1000', '--out', `pcap:${big}`]);
  assert.is(made.status, 0, made.stderr);
  // The run writes into a FIFO nobody reads yet: its first batch blocks in the write, after
  // the input was opened and validated and its first chunk read. Then the input is cut short.
  const fifo = join(dir, 'slow-fifo');
  sh('mkfifo', [fifo]);
  const fd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  const run = startCli(['test', pass, '--pcap', big, '--out', fifo]);
  const buf = Buffer.alloc(1 << 16);
  const readSome = (): number => {
    try {
      return readSync(fd, buf, 0, buf.length, null);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return -1;
      throw err;
    }
  };
  let got = 0;
  await waitFor('the first bytes in the FIFO', () => (got += Math.max(readSome(), 0)) > 24);
  truncateSync(big, 100_000);
  // Drain the FIFO until the run closes it.
  let exited = false;
  void run.done.then(() => (exited = true));
  for (;;) {
    const n = readSome();
    if (n === 0 && exited) break;
    if (n <= 0) await sleep(5);
  }
  closeSync(fd);
  const res = await run.done;
  assert.is(res.status, 2, `status ${res.status} (135 = SIGBUS): ${res.stderr}`);
  assert.match(oneLine(res.stderr), /big\.pcap: the file changed while it was read: it was \d+ bytes long when opened, now it ends at byte \d+ .*do not truncate or rewrite a capture while nmwasm reads it.*\(EPCAP_TRUNCATED\)/);
});

test.after(() => {
  rmSync(dir, { recursive: true, force: true });
});

test.run();

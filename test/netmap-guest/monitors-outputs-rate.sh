#!/bin/sh
# Guest tests of netmap monitors, outputs/forwarding and rate (issue 10 items 5, 7, 8), for the
# netmap guest tools (../shared/tools/netmap-guest: build.sh, run.sh; docs/PORTS.md "verified in the
# netmap guest"). Helpers copied from their guest-tests.sh. Run:
#   WORK=DIR NETMAP_EXTMEM=0|1 GUEST_TESTS=test/netmap-guest/monitors-outputs-rate.sh bash build.sh CHECKOUT [NETMAP_SRC]
#   WORK=DIR TIMEOUT=2400 KARGS=no_timer_check bash run.sh "mon out vrate"     (also: veth vale pipe rate monitor)
# Runs inside the qemu guest (busybox sh, as /init's child): loads netmap.ko and veth.ko, then
# runs nmwasm's netmap backend against the real module. Every command has a timeout.
# Tests to run: kernel parameter nmtests=a,b,... (default all): see the case at the bottom.
# Output: "### NAME" headers, "$ command" lines, raw output, and "CHECK NAME: ..." lines.
cd /nmwasm || exit 1
NMW="node /nmwasm/dist/nmwasm.mjs"
# nmalt=1: run the /nmwasm-alt copy (build.sh ALT_NMWASM) instead; nmenv=VAR=VAL:VAR=VAL: exported
if grep -q 'nmalt=1' /proc/cmdline && [ -d /nmwasm-alt ]; then NMW="node /nmwasm-alt/dist/nmwasm.mjs"; echo "(using /nmwasm-alt)"; fi
for kv in $(sed -n 's/.*nmenv=\([^ ]*\).*/\1/p' /proc/cmdline | tr ':' ' '); do export "$kv"; echo "(export $kv)"; done
BT="--batch-timeout 30000"
TESTS=$(sed -n 's/.*nmtests=\([^ ]*\).*/\1/p' /proc/cmdline | tr ',' ' ')
[ -z "$TESTS" ] && TESTS=all
T0=$(date +%s)
# NB: busybox sh runs its own applets for bare names (ip, ping...): iproute2 is called as /usr/sbin/ip
el() { echo "+$(( $(date +%s) - T0 ))s"; }
hdr() { echo; echo "### $* ($(el))"; }
show() { echo "\$ $*"; }
# x SECS CMD...: runs CMD with a timeout, prints it, its output and exit status
x() { s=$1; shift; show "$@"; timeout -s KILL "$s" "$@"; rc=$?; echo "[rc=$rc]"; return $rc; }
# bg OUT ERR CMD...: starts CMD in the background (stdout OUT, stderr ERR); PID in $BGPID
bg() { o=$1; e=$2; shift 2; show "$@ &"; "$@" >"$o" 2>"$e" & BGPID=$!; }
# ready ERRFILE PID SECS: waits until nmwasm printed its start-up line (ports open) or died
ready() {
  i=0
  while [ $i -lt "$3" ]; do
    [ -s "$1" ] && { echo "(ready after ${i}s: $(head -1 "$1"))"; sleep 2; return 0; }
    kill -0 "$2" 2>/dev/null || { echo "(exited before ready)"; return 1; }
    sleep 1; i=$((i + 1))
  done
  echo "(not ready after $3 s)"; return 1
}
# stop PID SECS: SIGINT, then waits at most SECS, then SIGKILL; prints the exit status
stop() {
  kill -INT "$1" 2>/dev/null
  i=0; while kill -0 "$1" 2>/dev/null && [ $i -lt "$2" ]; do sleep 1; i=$((i + 1)); done
  kill -0 "$1" 2>/dev/null && { echo "(still running after SIGINT + ${2}s: SIGKILL)"; kill -KILL "$1"; }
  wait "$1"; echo "[nmwasm rc=$?]"
}
# waitp PID SECS: waits for PID to end by itself, SIGKILL after SECS
waitp() {
  i=0; while kill -0 "$1" 2>/dev/null && [ $i -lt "$2" ]; do sleep 1; i=$((i + 1)); done
  kill -0 "$1" 2>/dev/null && { echo "(still running after ${2}s: SIGKILL)"; kill -KILL "$1"; }
  wait "$1"; echo "[rc=$?]"
}
# finish PID SECS: waits SECS for PID to end by itself (--count reached), then stops it (SIGINT)
finish() {
  i=0; while kill -0 "$1" 2>/dev/null && [ $i -lt "$2" ]; do sleep 1; i=$((i + 1)); done
  if kill -0 "$1" 2>/dev/null; then echo "(still running ${2}s after the sender ended: SIGINT)"; stop "$1" 60; else wait "$1"; echo "[nmwasm rc=$?]"; fi
}
# send PID SECS CMD...: runs the sender CMD only while nmwasm PID is alive (else says so)
send() {
  p=$1; s=$2; shift 2
  if kill -0 "$p" 2>/dev/null; then x "$s" "$@"; else echo "(nmwasm $p is gone: not running $*)"; fi
}
out() { echo "--- stdout:"; cat "$1"; echo "--- stderr:"; tail -n 20 "$2"; }
jget() { node -e 'const j=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8").trim().split("\n").pop());const v=process.argv[2].split(".").reduce((o,k)=>o==null?o:o[k],j);console.log(v===undefined?"?":typeof v==="object"?JSON.stringify(v):v)' "$1" "$2" 2>/dev/null || echo "?"; }
pg_rate() { grep -E 'Received|Sent|pps' "$1" | tail -n 3; }

setup() {
  hdr "setup: modules"
  x 30 insmod /lib/modules/netmap.ko
  x 30 insmod /lib/modules/veth.ko
  grep -w netmap /proc/misc
  if [ ! -c /dev/netmap ]; then minor=$(awk '$2=="netmap"{print $1}' /proc/misc); mknod /dev/netmap c 10 "$minor"; fi
  ls -l /dev/netmap
  for p in /sys/module/netmap/parameters/*; do printf '%s=%s ' "${p##*/}" "$(cat "$p")"; done; echo
  dmesg | grep -i netmap | tail -n 5
  x 60 node -e 'const n=require("/nmwasm/build/Release/nmwasm.node"); console.log("backends:", JSON.stringify(n.backends ? n.backends() : Object.keys(n)))'
}

veth_setup() {
  hdr "veth setup: v0 (10.0.0.1, root ns) <-> v1 (10.0.0.2, netns ns1)"
  /usr/sbin/ip link add v0 type veth peer name v1
  /usr/sbin/ip netns add ns1 && /usr/sbin/ip link set v1 netns ns1
  /usr/sbin/ip addr add 10.0.0.1/24 dev v0 && /usr/sbin/ip link set v0 up
  /usr/sbin/ip netns exec ns1 sh -c '/usr/sbin/ip addr add 10.0.0.2/24 dev v1; /usr/sbin/ip link set v1 up; /usr/sbin/ip link set lo up'
  for c in "ethtool -K v0 tx off tso off gso off gro off" "/usr/sbin/ip netns exec ns1 ethtool -K v1 tx off tso off gso off gro off"; do $c >/dev/null 2>&1 || echo "($c failed)"; done
  /usr/sbin/ip -br addr; /usr/sbin/ip netns exec ns1 /usr/sbin/ip -br addr
  cat > /tmp/udprecv.js <<'EOF'
const s = require('dgram').createSocket('udp4'); let n = 0;
s.on('message', () => n++); s.bind(9999, '10.0.0.1');
setTimeout(() => { console.log('udp received: ' + n); process.exit(0); }, +process.argv[2] * 1000);
EOF
  cat > /tmp/udpsend.js <<'EOF'
const s = require('dgram').createSocket('udp4'); let i = 0;
const t = setInterval(() => { s.send('x'.repeat(32), 9999, '10.0.0.1'); if (++i === 10) { clearInterval(t); setTimeout(() => { console.log('udp sent: 10'); process.exit(0); }, 200); } }, 50);
EOF
}
t_vale() {
  hdr "T1 VALE: counter on vale0:1, pkt-gen tx 100000 on vale0:0"
  x 60 $NMW load filters/build/counter.wasm --port netmap:vale0:1 --count 10
  bg /tmp/t1.out /tmp/t1.err $NMW load filters/build/counter.wasm --port vale0:1 --count 100000 --duration 300 $BT --json
  P=$BGPID; ready /tmp/t1.err $P 120
  x 30 vale-ctl
  send $P 60 pkt-gen -i vale0:0 -f tx -n 100000 > /tmp/t1.pg 2>&1; pg_rate /tmp/t1.pg; tail -n 4 /tmp/t1.pg
  finish $P 30; out /tmp/t1.out /tmp/t1.err
  echo "CHECK T1 vale: packets=$(jget /tmp/t1.out packets) stoppedBy=$(jget /tmp/t1.out stoppedBy) expected 100000"
  hdr "T1b VALE, paced: pkt-gen -R 2000 -n 20000 (VALE drops what a full ring cannot take: pacing shows whether RX keeps going)"
  bg /tmp/t1b.out /tmp/t1b.err $NMW load filters/build/counter.wasm --port vale0:2 --count 20000 --duration 300 $BT --json
  P=$BGPID; ready /tmp/t1b.err $P 120
  send $P 60 pkt-gen -i vale0:0 -f tx -R 2000 -n 20000 > /tmp/t1b.pg 2>&1; tail -n 3 /tmp/t1b.pg
  finish $P 30; out /tmp/t1b.out /tmp/t1b.err
  echo "CHECK T1b vale paced: packets=$(jget /tmp/t1b.out packets) batches=$(jget /tmp/t1b.out batches) stoppedBy=$(jget /tmp/t1b.out stoppedBy) expected 20000"
}
t_pipe() {
  hdr "T2a pipe: pkt-gen tx pipeA{1 -> nmwasm counter on pipeA}1"
  bg /tmp/t2a.out /tmp/t2a.err $NMW load filters/build/counter.wasm --port 'pipeA}1' --count 50000 --duration 300 $BT --json
  P=$BGPID; ready /tmp/t2a.err $P 120
  send $P 60 pkt-gen -i 'pipeA{1' -f tx -n 50000 > /tmp/t2a.pg 2>&1; pg_rate /tmp/t2a.pg; tail -n 4 /tmp/t2a.pg
  finish $P 30; out /tmp/t2a.out /tmp/t2a.err
  echo "CHECK T2a pipe-in: packets=$(jget /tmp/t2a.out packets) expected 50000"

  hdr "T2b pipe: nmwasm gen:count=50000 --out pipeB{1 -> pkt-gen rx pipeB}1"
  show "pkt-gen -i 'pipeB}1' -f rx &"
  pkt-gen -i 'pipeB}1' -f rx > /tmp/t2b.pg 2>&1 & G=$!
  sleep 5
  x 120 $NMW load filters/build/counter.wasm --port gen:count=50000,size=64 --out 'pipeB{1' $BT --json > /tmp/t2b.out 2>/tmp/t2b.err
  out /tmp/t2b.out /tmp/t2b.err
  sleep 3; kill -INT $G; sleep 2; kill -KILL $G 2>/dev/null; wait $G
  pg_rate /tmp/t2b.pg; tail -n 5 /tmp/t2b.pg
  echo "CHECK T2b pipe-out: nmwasm out.packets=$(jget /tmp/t2b.out out.packets) drops=$(jget /tmp/t2b.out out.drops); pkt-gen rx: $(grep -oE 'Received [0-9]+ packets' /tmp/t2b.pg | tail -1)"

  hdr "T2c forwarding: pkt-gen tx pipeC{1 -> nmwasm pipeC}1 --to pipeD{1 -> pkt-gen rx pipeD}1"
  show "pkt-gen -i 'pipeD}1' -f rx &"
  pkt-gen -i 'pipeD}1' -f rx > /tmp/t2c.pg 2>&1 & G=$!
  sleep 3
  bg /tmp/t2c.out /tmp/t2c.err $NMW load filters/build/counter.wasm --port 'pipeC}1' --to 'pipeD{1' --count 30000 --duration 300 $BT --json
  P=$BGPID; ready /tmp/t2c.err $P 120
  send $P 60 pkt-gen -i 'pipeC{1' -f tx -n 30000 > /tmp/t2c.tx 2>&1; pg_rate /tmp/t2c.tx
  finish $P 30; out /tmp/t2c.out /tmp/t2c.err
  sleep 3; kill -INT $G; sleep 2; kill -KILL $G 2>/dev/null; wait $G
  pg_rate /tmp/t2c.pg; tail -n 5 /tmp/t2c.pg
  echo "CHECK T2c forward: nmwasm packets=$(jget /tmp/t2c.out packets) out.packets=$(jget /tmp/t2c.out out.packets) drops=$(jget /tmp/t2c.out out.drops); pkt-gen rx: $(grep -oE 'Received [0-9]+ packets' /tmp/t2c.pg | tail -1)"
}
traffic() {
  node /tmp/udprecv.js 35 > /tmp/udp.$1 2>&1 & R=$!
  sleep 4
  x 40 /usr/sbin/ip netns exec ns1 ping -c 3 -W 3 10.0.0.1 > /tmp/ping.$1 2>&1; tail -n 3 /tmp/ping.$1
  x 40 /usr/sbin/ip netns exec ns1 node /tmp/udpsend.js
  wait $R; cat /tmp/udp.$1
}
t_veth() {
  veth_setup
  hdr "T3 baseline: no nmwasm"
  traffic base
  echo "CHECK T3 baseline: $(grep -o '[0-9]* packets received' /tmp/ping.base) / $(cat /tmp/udp.base)"
  for spec in 'netmap:v0' 'netmap:v0*' 'netmap:v0-0/R' 'netmap:v0^'; do
    tag=$(echo "$spec" | tr -c 'a-z0-9\n' '_')
    hdr "T3 host-control.wasm --port $spec"
    # bgr: retries a register that fails (ENOMEM with extmem) and waits until the run is going
    if bgr /tmp/t3$tag.out /tmp/t3$tag.err $NMW load filters/build/host-control.wasm --port "$spec" $BT --json; then sleep 15; traffic "$tag"; fi
    stop $P 60; out /tmp/t3$tag.out /tmp/t3$tag.err
    echo "CHECK T3 $spec: $(grep -o '[0-9]* packets received' /tmp/ping.$tag 2>/dev/null) / $(cat /tmp/udp.$tag 2>/dev/null) / verdicts host=$(jget /tmp/t3$tag.out verdicts.host) drop=$(jget /tmp/t3$tag.out verdicts.drop) filterStats=$(jget /tmp/t3$tag.out filterStats | tr -d '\n')"
    x 40 /usr/sbin/ip netns exec ns1 ping -c 1 -W 3 10.0.0.1 > /dev/null 2>&1; echo "(ping after close: rc=$?)"
  done
  dmesg | grep -i netmap | tail -n 10
}
t_rate() {
  hdr "T6 rate: pkt-gen rx vs nmwasm counter on pipe R, same source (pkt-gen tx, 60-byte frames)"
  N=300000
  show "pkt-gen -i 'pipeR}1' -f rx &"
  pkt-gen -i 'pipeR}1' -f rx > /tmp/t6a.pg 2>&1 & G=$!
  sleep 3
  x 120 pkt-gen -i 'pipeR{1' -f tx -n $N > /tmp/t6a.tx 2>&1; pg_rate /tmp/t6a.tx
  sleep 2; kill -INT $G; sleep 2; kill -KILL $G 2>/dev/null; wait $G
  tail -n 6 /tmp/t6a.pg
  bg /tmp/t6b.out /tmp/t6b.err $NMW load filters/build/counter.wasm --port 'pipeS}1' --count $N --duration 300 $BT --json
  P=$BGPID; ready /tmp/t6b.err $P 120
  send $P 120 pkt-gen -i 'pipeS{1' -f tx -n $N > /tmp/t6b.tx 2>&1; pg_rate /tmp/t6b.tx
  finish $P 30; out /tmp/t6b.out /tmp/t6b.err
  echo "CHECK T6 rate: nmwasm packets=$(jget /tmp/t6b.out packets) elapsedMs=$(jget /tmp/t6b.out elapsedMs)"
}
t_monitor() {
  hdr "T8 monitor: pkt-gen rx holds vale0:m; nmwasm counter monitors it as vale0:m/r; pkt-gen tx floods from vale0:mx"
  pkt-gen -i vale0:m -f rx > /tmp/t8.rx 2>&1 & G=$!
  sleep 3
  bg /tmp/t8.out /tmp/t8.err $NMW load filters/build/counter.wasm --port vale0:m/r --count 5000 --duration 300 $BT --json
  P=$BGPID; ready /tmp/t8.err $P 120
  send $P 60 pkt-gen -i vale0:mx -f tx -R 1000 -n 5000 > /tmp/t8.tx 2>&1; tail -n 2 /tmp/t8.tx
  finish $P 30; out /tmp/t8.out /tmp/t8.err
  kill -INT $G 2>/dev/null; sleep 2; kill -KILL $G 2>/dev/null; wait $G; tail -n 3 /tmp/t8.rx
  echo "CHECK T8 monitor: nmwasm packets=$(jget /tmp/t8.out packets) expected 5000; pkt-gen rx: $(grep -oE 'Received [0-9]+ packets' /tmp/t8.rx | tail -1)"
}
# ---- nmB: monitors, outputs, rate (issue 10 items 5, 7, 8) ----
# bgr OUT ERR CMD...: bg + ready, up to 5 attempts (extmem registers fail with ENOMEM at random: issue 10 item 2)
bgr() {
  o=$1; e=$2; shift 2; try=1
  while [ $try -le 5 ]; do
    bg "$o" "$e" "$@"; P=$BGPID
    if ready "$e" $P 120 && kill -0 $P 2>/dev/null; then
      # the first stderr line comes before the ports open: wait for the first status line (the run is going)
      i=0; while [ $i -lt 180 ] && kill -0 $P 2>/dev/null && ! grep -q '^status:' "$e"; do sleep 1; i=$((i + 1)); done
      if kill -0 $P 2>/dev/null; then echo "(open attempts: $try; running after +${i}s)"; sleep 2; return 0; fi
    fi
    wait $P; tail -n 1 "$e"; try=$((try + 1))
  done
  return 1
}
rxn() { grep -oE 'Received [0-9]+ packets' "$1" | tail -1 | grep -oE '[0-9]+' || echo "?"; }
stoppg() { kill -INT $1 2>/dev/null; sleep 2; kill -KILL $1 2>/dev/null; wait $1; }

t_mont() {
  hdr "M3 monitor /t of vale0:t held by pkt-gen tx (-w 100: opens, waits for the monitor, then sends 3000 at 500 pps)"
  pkt-gen -i vale0:tr -f rx > /tmp/m3.rx 2>&1 & G=$!
  timeout -s KILL 200 pkt-gen -i vale0:t -f tx -w 100 -R 500 -n 3000 > /tmp/m3.tx 2>&1 & T=$!; sleep 2
  bgr /tmp/m3.out /tmp/m3.err $NMW load filters/build/counter.wasm --port vale0:t/t --count 3000 --duration 300 $BT --json
  wait $T; tail -n 1 /tmp/m3.tx
  finish $P 30; out /tmp/m3.out /tmp/m3.err
  stoppg $G
  echo "CHECK M3 monitor vale0:t/t: nmwasm packets=$(jget /tmp/m3.out packets) of 3000 sent ; pkt-gen rx vale0:tr: $(rxn /tmp/m3.rx)"

}

t_mon() {
  hdr "M1 monitor /r of vale0:m held by pkt-gen rx; pkt-gen tx -R 2000 -n 5000 from vale0:mx"
  pkt-gen -i vale0:m -f rx > /tmp/m1.rx 2>&1 & G=$!; sleep 3
  bgr /tmp/m1.out /tmp/m1.err $NMW load filters/build/counter.wasm --port vale0:m/r --count 5000 --duration 300 $BT --json
  send $P 60 pkt-gen -i vale0:mx -f tx -R 1000 -n 5000 > /tmp/m1.tx 2>&1; tail -n 1 /tmp/m1.tx
  finish $P 30; out /tmp/m1.out /tmp/m1.err
  stoppg $G
  echo "CHECK M1 monitor vale0:m/r: nmwasm packets=$(jget /tmp/m1.out packets) verdicts=$(jget /tmp/m1.out verdicts) ; pkt-gen rx on vale0:m: $(rxn /tmp/m1.rx) of 5000"

  hdr "M2 monitor /rt and /z of vale0:n held by pkt-gen rx (two monitors at once)"
  pkt-gen -i vale0:n -f rx > /tmp/m2.rx 2>&1 & G=$!; sleep 3
  bgr /tmp/m2a.out /tmp/m2a.err $NMW load filters/build/counter.wasm --port vale0:n/rt --count 5000 --duration 300 $BT --json; PA=$P
  bgr /tmp/m2z.out /tmp/m2z.err $NMW load filters/build/counter.wasm --port vale0:n/z --count 5000 --duration 300 $BT --json; PZ=$P
  send $PA 60 pkt-gen -i vale0:nx -f tx -R 1000 -n 5000 > /tmp/m2.tx 2>&1; tail -n 1 /tmp/m2.tx
  finish $PA 30; out /tmp/m2a.out /tmp/m2a.err
  finish $PZ 10; out /tmp/m2z.out /tmp/m2z.err
  stoppg $G
  echo "CHECK M2 monitor vale0:n/rt: packets=$(jget /tmp/m2a.out packets); /z: packets=$(jget /tmp/m2z.out packets) ; pkt-gen rx on vale0:n: $(rxn /tmp/m2.rx) of 5000"

  t_mont

  hdr "M4 (done-when 4) monitor netmap:v0/r beside a pkt-gen rx reader of v0; ns1 sends 2000 frames from v1 (pkt-gen -R 200)"
  /usr/sbin/ip link show v0 >/dev/null 2>&1 || veth_setup
  pkt-gen -i netmap:v0 -f rx > /tmp/m4.rx 2>&1 & G=$!; sleep 4
  bgr /tmp/m4.out /tmp/m4.err $NMW load filters/build/counter.wasm --port netmap:v0/r --duration 400 $BT --json
  send $P 90 /usr/sbin/ip netns exec ns1 pkt-gen -i netmap:v1 -f tx -w 3 -R 200 -n 2000 > /tmp/m4.tx 2>&1; tail -n 1 /tmp/m4.tx
  # the generic (emulated) veth adapter hands frames over slowly under TCG: give both readers time, stop the reader, then the monitor
  sleep 45; stoppg $G; sleep 5
  stop $P 60; out /tmp/m4.out /tmp/m4.err; tail -n 2 /tmp/m4.rx
  echo "CHECK M4 monitor netmap:v0/r: nmwasm packets=$(jget /tmp/m4.out packets) stoppedBy=$(jget /tmp/m4.out stoppedBy) ; pkt-gen rx on v0: $(rxn /tmp/m4.rx) ; sent 2000"

  hdr "M5 monitor netmap:v0/r beside an nmwasm counter reading netmap:v0"
  bgr /tmp/m5r.out /tmp/m5r.err $NMW load filters/build/counter.wasm --port netmap:v0 --count 2000 --duration 400 $BT --json; PR=$P
  bgr /tmp/m5.out /tmp/m5.err $NMW load filters/build/counter.wasm --port netmap:v0/r --count 2000 --duration 400 $BT --json; PM=$P
  send $PM 90 /usr/sbin/ip netns exec ns1 pkt-gen -i netmap:v1 -f tx -w 3 -R 200 -n 2000 > /tmp/m5.tx 2>&1; tail -n 1 /tmp/m5.tx
  finish $PR 150; out /tmp/m5r.out /tmp/m5r.err
  finish $PM 30; out /tmp/m5.out /tmp/m5.err
  echo "CHECK M5 monitor netmap:v0/r: packets=$(jget /tmp/m5.out packets) stoppedBy=$(jget /tmp/m5.out stoppedBy) ; nmwasm reader netmap:v0: packets=$(jget /tmp/m5r.out packets) ; sent 2000"

  hdr "M6 monitor of a port nobody holds; a monitor as output"
  x 60 $NMW load filters/build/counter.wasm --port vale0:nobody/r --duration 2 $BT
  x 60 $NMW load filters/build/counter.wasm --port gen:count=10 --out vale0:m/r $BT
}

t_out() {
  hdr "O1 --out vale0:o1 (gen 20000, pps 5000) -> pkt-gen rx on vale0:o2"
  pkt-gen -i vale0:o2 -f rx > /tmp/o1.rx 2>&1 & G=$!; sleep 3
  try=1; while [ $try -le 5 ]; do
    show "$NMW load filters/build/counter.wasm --port gen:count=20000,size=64,pps=5000 --out vale0:o1 $BT --json"
    timeout -s KILL 180 $NMW load filters/build/counter.wasm --port gen:count=20000,size=64,pps=5000 --out vale0:o1 $BT --json > /tmp/o1.out 2>/tmp/o1.err && break
    tail -n 1 /tmp/o1.err; try=$((try + 1)); done
  out /tmp/o1.out /tmp/o1.err; sleep 2; stoppg $G
  echo "CHECK O1 --out vale0:o1 (attempts $try): out.packets=$(jget /tmp/o1.out out.packets) out.drops=$(jget /tmp/o1.out out.drops) ; pkt-gen rx: $(rxn /tmp/o1.rx) of 20000"

  hdr "O2 forwarding VALE -> VALE: pkt-gen tx vale1:a -R 2000 -n 10000 -> nmwasm vale1:b --to vale2:c -> pkt-gen rx vale2:d"
  pkt-gen -i vale2:d -f rx > /tmp/o2.rx 2>&1 & G=$!; sleep 3
  bgr /tmp/o2.out /tmp/o2.err $NMW load filters/build/counter.wasm --port vale1:b --to vale2:c --count 10000 --duration 300 $BT --json
  send $P 60 pkt-gen -i vale1:a -f tx -R 2000 -n 10000 > /tmp/o2.tx 2>&1; tail -n 1 /tmp/o2.tx
  finish $P 30; out /tmp/o2.out /tmp/o2.err; sleep 2; stoppg $G
  echo "CHECK O2 forward vale1:b -> vale2:c: packets=$(jget /tmp/o2.out packets) out.packets=$(jget /tmp/o2.out out.packets) out.drops=$(jget /tmp/o2.out out.drops) ; pkt-gen rx: $(rxn /tmp/o2.rx) of 10000"

  hdr "O3 --to netmap:v0: gen 1000 frames out of v0, counted on v1 in ns1 (ip -s link)"
  /usr/sbin/ip link show v0 >/dev/null 2>&1 || veth_setup
  b=$(/usr/sbin/ip netns exec ns1 cat /sys/class/net/v1/statistics/rx_packets)
  try=1; while [ $try -le 5 ]; do
    show "$NMW load filters/build/counter.wasm --port gen:count=1000,size=64,pps=2000 --out netmap:v0 $BT --json"
    timeout -s KILL 120 $NMW load filters/build/counter.wasm --port gen:count=1000,size=64,pps=2000 --out netmap:v0 $BT --json > /tmp/o3.out 2>/tmp/o3.err && break
    tail -n 1 /tmp/o3.err; try=$((try + 1)); done
  out /tmp/o3.out /tmp/o3.err; sleep 2
  a=$(/usr/sbin/ip netns exec ns1 cat /sys/class/net/v1/statistics/rx_packets)
  echo "CHECK O3 --out netmap:v0 (attempts $try): out.packets=$(jget /tmp/o3.out out.packets) out.drops=$(jget /tmp/o3.out out.drops) ; v1 rx_packets +$((a - b))"
}

t_vrate() {
  hdr "R1 (done-when 1) VALE paced: counter on vale4:rx; warm-up 1000 frames at 1 kpps, then pkt-gen tx -R 20000 -n 100000 from vale4:tx"
  bgr /tmp/r1.out /tmp/r1.err $NMW load filters/build/counter.wasm --port vale4:rx --count 101000 --duration 400 $BT --json
  send $P 60 pkt-gen -i vale4:tx -f tx -R 1000 -n 1000 > /tmp/r1w.tx 2>&1
  i=0; while [ $i -lt 60 ] && ! grep -q '| 1000 pkts' /tmp/r1.err; do sleep 1; i=$((i + 1)); done; grep status: /tmp/r1.err | tail -n 1
  send $P 120 pkt-gen -i vale4:tx -f tx -R 20000 -n 100000 > /tmp/r1.tx 2>&1; grep -E '^Speed' /tmp/r1.tx | tail -n 1
  finish $P 60; out /tmp/r1.out /tmp/r1.err
  echo "CHECK R1 vale paced 20 kpps: packets=$(jget /tmp/r1.out packets) batches=$(jget /tmp/r1.out batches) stoppedBy=$(jget /tmp/r1.out stoppedBy) expected 101000 (1000 warm-up + 100000)"
  N=200000
  for R in 0 100000; do
    rarg=""; [ "$R" != 0 ] && rarg="-R $R"
    pkt-gen -i vale5:rx -f rx > /tmp/r2.pg 2>&1 & G=$!; sleep 3
    x 120 pkt-gen -i vale5:tx -f tx -n $N $rarg > /tmp/r2.tx 2>&1; grep -E '^Speed' /tmp/r2.tx | tail -n 1
    sleep 2; stoppg $G
    echo "CHECK R2 R=$R pkt-gen rx: $(rxn /tmp/r2.pg) of $N"
    for S in 1024 4096; do
      bgr /tmp/r2.out /tmp/r2.err $NMW load filters/build/counter.wasm --port "vale6:rx$S@conf:slots=$S" --count $N --duration 300 $BT --json
      send $P 120 pkt-gen -i vale6:tx -f tx -n $N $rarg > /tmp/r2w.tx 2>&1; grep -E '^Speed' /tmp/r2w.tx | tail -n 1
      finish $P 20
      echo "CHECK R2 R=$R slots=$S nmwasm: packets=$(jget /tmp/r2.out packets) batches=$(jget /tmp/r2.out batches) of $N"
    done
  done
}

# t_vab: the same VALE counter run with this checkout (B) and, at /nmwasm-alt, another build (A:
# build.sh ALT_NMWASM=CHECKOUT, e.g. the main branch), interleaved A B A B, beside pkt-gen rx
t_vab() {
  [ -d /nmwasm-alt ] || { echo "(no /nmwasm-alt: build with ALT_NMWASM=CHECKOUT)"; return; }
  N=200000
  for R in 0 100000; do
    rarg=""; [ "$R" != 0 ] && rarg="-R $R"
    pkt-gen -i vale7:rx -f rx > /tmp/ab.pg 2>&1 & G=$!; sleep 3
    x 120 pkt-gen -i vale7:tx -f tx -n $N $rarg > /tmp/ab.tx 2>&1; grep -E '^Speed' /tmp/ab.tx | tail -n 1
    sleep 2; stoppg $G
    echo "CHECK AB R=$R pkt-gen rx: $(rxn /tmp/ab.pg) of $N"
    for round in 1 2; do
      for who in A B; do
        cmd="$NMW"; [ $who = A ] && cmd="node /nmwasm-alt/dist/nmwasm.mjs"
        bgr /tmp/ab.out /tmp/ab.err $cmd load filters/build/counter.wasm --port vale8:rx --count $N --duration 300 $BT --json
        send $P 120 pkt-gen -i vale8:tx -f tx -n $N $rarg > /tmp/abw.tx 2>&1
        finish $P 20
        echo "CHECK AB R=$R round=$round $who: packets=$(jget /tmp/ab.out packets) batches=$(jget /tmp/ab.out batches) of $N"
      done
    done
  done
}

# t_r1slow: R1 at 5 kpps on a 4096-slot VALE port (VALE's largest ring)
t_r1slow() {
  hdr "R1s VALE paced: counter on vale9:rx@conf:slots=4096; warm-up 1000 frames at 1 kpps, then pkt-gen tx -R 5000 -n 100000"
  bgr /tmp/r1s.out /tmp/r1s.err $NMW load filters/build/counter.wasm --port vale9:rx@conf:slots=4096 --count 101000 --duration 400 $BT --json
  send $P 60 pkt-gen -i vale9:tx -f tx -R 1000 -n 1000 > /tmp/r1sw.tx 2>&1
  i=0; while [ $i -lt 60 ] && ! grep -q '| 1000 pkts' /tmp/r1s.err; do sleep 1; i=$((i + 1)); done; grep status: /tmp/r1s.err | tail -n 1
  send $P 120 pkt-gen -i vale9:tx -f tx -R 5000 -n 100000 > /tmp/r1s.tx 2>&1; grep -E '^Speed' /tmp/r1s.tx | tail -n 1
  finish $P 60; out /tmp/r1s.out /tmp/r1s.err
  echo "CHECK R1s vale paced 5 kpps, 4096 slots: packets=$(jget /tmp/r1s.out packets) batches=$(jget /tmp/r1s.out batches) stoppedBy=$(jget /tmp/r1s.out stoppedBy) expected 101000 (1000 warm-up + 100000)"
}

setup
for t in $TESTS; do
  case "$t" in
    mon) t_mon ;; mont) t_mont ;; out) t_out ;; vrate) t_vrate ;; vab) t_vab ;; r1slow) t_r1slow ;; vethsetup) veth_setup ;;
    veth) t_veth ;; vale) t_vale ;; pipe) t_pipe ;; rate) t_rate ;; monitor) t_monitor ;;
    *) echo "unknown test $t" ;;
  esac
done
hdr "end"
dmesg | grep -iE 'netmap|BUG|WARN|Oops' | tail -n 20

#!/bin/sh
# Runs inside the qemu guest (busybox sh, as /init's child): loads netmap.ko and veth.ko, then
# runs nmwasm's netmap backend against the real module. Every command has a timeout.
# Tests to run: kernel parameter nmtests=a,b,... (default all): see the case at the bottom.
# Output: "### NAME" headers, "$ command" lines, raw output, and "CHECK NAME: ..." lines.
cd /nmwasm || exit 1
NMW="node /nmwasm/dist/nmwasm.mjs"
# nmalt=1: run the /nmwasm-alt copy (build.sh ALT_NMWASM) instead; nmenv=VAR=VAL:VAR=VAL: exported
if grep -q 'nmalt=1' /proc/cmdline && [ -d /nmwasm-alt ]; then NMW="node /nmwasm-alt/dist/nmwasm.mjs"; echo "(using /nmwasm-alt)"; fi
for kv in $(sed -n 's/.*nmenv=\([^ ]*\).*/\1/p' /proc/cmdline | tr ':' ' '); do export "$kv"; echo "(export $kv)"; done
BT="--batch-timeout 5000"
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
  show "nmwasm ... --out pipeB{1"; timeout -s KILL 120 $NMW load filters/build/counter.wasm --port gen:count=50000,size=64 --out 'pipeB{1' $BT --json > /tmp/t2b.out 2>/tmp/t2b.err
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
# traffic LABEL: ping from ns1, 10 UDP datagrams from ns1 to a listener on v0's address
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
    bg /tmp/t3$tag.out /tmp/t3$tag.err $NMW load filters/build/host-control.wasm --port "$spec" $BT --json
    P=$BGPID
    if ready /tmp/t3$tag.err $P 120; then traffic "$tag"; fi
    stop $P 60; out /tmp/t3$tag.out /tmp/t3$tag.err
    echo "CHECK T3 $spec: $(grep -o '[0-9]* packets received' /tmp/ping.$tag 2>/dev/null) / $(cat /tmp/udp.$tag 2>/dev/null) / verdicts host=$(jget /tmp/t3$tag.out verdicts.host) drop=$(jget /tmp/t3$tag.out verdicts.drop) filterStats=$(jget /tmp/t3$tag.out filterStats | tr -d '\n')"
    x 40 /usr/sbin/ip netns exec ns1 ping -c 1 -W 3 10.0.0.1 > /dev/null 2>&1; echo "(ping after close: rc=$?)"
  done
  dmesg | grep -i netmap | tail -n 10
}

t_reopen() {
  /usr/sbin/ip link show v0 >/dev/null 2>&1 || veth_setup
  hdr "T4 open/close 20 times (vale0:r, --count 1 --duration 1), then SIGKILL mid-run, then start again"
  ok=0; i=1
  while [ $i -le 20 ]; do
    timeout -s KILL 60 $NMW load filters/build/counter.wasm --port vale0:r --duration 1 $BT --json > /tmp/t4.out 2>/tmp/t4.err; rc=$?
    [ $rc -eq 0 ] && ok=$((ok + 1)) || { echo "run $i rc=$rc: $(tail -n 2 /tmp/t4.err)"; }
    i=$((i + 1))
  done
  echo "CHECK T4 reopen: $ok/20 runs exited 0 ($(el))"
  bg /tmp/t4k.out /tmp/t4k.err $NMW load filters/build/counter.wasm --port 'pipeK}1' $BT --json
  P=$BGPID; ready /tmp/t4k.err $P 120
  timeout -s KILL 60 pkt-gen -i 'pipeK{1' -f tx -n 200000 > /tmp/t4k.pg 2>&1 & G=$!
  sleep 4; show "kill -KILL nmwasm"; kill -KILL $P; wait $P; echo "[nmwasm rc=$?]"
  kill -KILL $G 2>/dev/null; wait $G
  show "nmwasm ... --port pipeK}1 --duration 3"; timeout -s KILL 120 $NMW load filters/build/counter.wasm --port 'pipeK}1' --duration 3 $BT --json > /tmp/t4r.out 2>/tmp/t4r.err; echo "[rc=$?]"
  out /tmp/t4r.out /tmp/t4r.err
  echo "CHECK T4 after SIGKILL: rc=$(test -s /tmp/t4r.out && echo ok || echo fail) stoppedBy=$(jget /tmp/t4r.out stoppedBy)"
  x 120 $NMW load filters/build/counter.wasm --port 'vale0:k' --duration 3 $BT --json
  x 120 $NMW load filters/build/counter.wasm --port 'netmap:v0' --duration 3 $BT --json
}

t_bad() {
  /usr/sbin/ip link show v0 >/dev/null 2>&1 || veth_setup
  hdr "T5 bad names with /dev/netmap present"
  for spec in 'netmap:doesnotexist' 'netmap:v0-7' 'vale0:' 'netmap:v0^7' 'vale0:p1@conf:rings=64,slots=4096'; do
    x 60 $NMW load filters/build/counter.wasm --port "$spec" --count 1 --duration 2 $BT > /tmp/t5.out 2>/tmp/t5.err
    rc=$?; cat /tmp/t5.out /tmp/t5.err | head -n 5
    echo "CHECK T5 $spec: rc=$rc lines=$(cat /tmp/t5.err | wc -l)"
  done
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

t_ratevale() {
  hdr "T6v rate on VALE (lossy: the switch drops what a full RX ring cannot take): received of N by pkt-gen rx vs nmwasm counter, pkt-gen tx at rate R"
  N=200000
  for R in 0 100000 20000; do
    rarg=""; [ "$R" != 0 ] && rarg="-R $R"
    pkt-gen -i vale3:rx -f rx > /tmp/t6v.pg 2>&1 & G=$!; sleep 3
    x 120 pkt-gen -i vale3:tx -f tx -n $N $rarg > /tmp/t6v.tx 2>&1; grep -E '^Speed' /tmp/t6v.tx | tail -n 1
    sleep 2; kill -INT $G; sleep 2; kill -KILL $G 2>/dev/null; wait $G
    echo "CHECK T6v R=$R pkt-gen rx: $(grep -E '^Received' /tmp/t6v.pg | tail -n 1)"
    try=1
    while [ $try -le 5 ]; do
      bg /tmp/t6w.out /tmp/t6w.err $NMW load filters/build/counter.wasm --port vale3:rx --count $N --duration 300 $BT --json
      P=$BGPID; ready /tmp/t6w.err $P 60
      kill -0 $P 2>/dev/null && break
      wait $P; try=$((try + 1))
    done
    send $P 120 pkt-gen -i vale3:tx -f tx -n $N $rarg > /tmp/t6w.tx 2>&1; grep -E '^Speed' /tmp/t6w.tx | tail -n 1
    finish $P 20
    echo "CHECK T6v R=$R nmwasm (open attempts $try): packets=$(jget /tmp/t6w.out packets) batches=$(jget /tmp/t6w.out batches)"
  done
}

t_unit() {
  hdr "T7 the project's netmap tests (tsx; g++ is a shim handing out binaries build.sh compiled)"
  for f in test/native/netmap_abi.test.ts test/native/netmap_port.test.ts test/host/portspec-netmap.test.ts; do
    x 400 node --import tsx "$f" > /tmp/t7.out 2>&1; rc=$?
    tail -n 25 /tmp/t7.out
    echo "CHECK T7 $f: rc=$rc $(grep -E 'Total|Passed|Skipped' /tmp/t7.out | tr '\n' ' ')"
  done
}

t_debug() {
  hdr "TD register replies (a copy of nmwasm whose addon prints netmap's register reply: /nmwasm-alt, NMWASM_NETMAP_DEBUG=1; netmap verbose=1)"
  [ -d /nmwasm-alt ] || { echo "(no /nmwasm-alt in this initramfs)"; return; }
  echo 1 > /sys/module/netmap/parameters/verbose
  D="node /nmwasm-alt/dist/nmwasm.mjs"; export NMWASM_NETMAP_DEBUG=1
  dm() { dmesg -c > /dev/null; }
  dm
  echo "-- D1 vale0:d1 as input (nothing else open)"
  x 60 $D load /nmwasm/filters/build/counter.wasm --port vale0:d1 --duration 2 $BT --json; dmesg -c | tail -n 8
  echo "-- D2 pipeX}1 as input, nothing else open (T2a's ENOMEM)"
  x 60 $D load /nmwasm/filters/build/counter.wasm --port 'pipeX}1' --duration 2 $BT --json; dmesg -c | tail -n 12
  echo "-- D3 pipeY{1 as output while pkt-gen rx holds pipeY}1 (T2b)"
  pkt-gen -i 'pipeY}1' -f rx > /tmp/d3.pg 2>&1 & G=$!; sleep 4; dm
  x 60 $D load /nmwasm/filters/build/counter.wasm --port gen:count=10 --out 'pipeY{1' $BT --json; dmesg -c | tail -n 12
  kill -INT $G; sleep 1; kill -KILL $G 2>/dev/null; wait $G; grep -E 'mem_id|memory|Received' /tmp/d3.pg | head -n 5
  echo "-- D4 pipeZ{1 as output, nothing else open"
  x 60 $D load /nmwasm/filters/build/counter.wasm --port gen:count=10 --out 'pipeZ{1' $BT --json; dmesg -c | tail -n 12
  echo "-- D5 vale0:d5 as output (--out), nothing else open"
  x 60 $D load /nmwasm/filters/build/counter.wasm --port gen:count=10 --out vale0:d5 $BT --json; dmesg -c | tail -n 12
  echo "-- D6 pipeW}1 as input while pkt-gen tx holds pipeW{1"
  timeout -s KILL 60 pkt-gen -i 'pipeW{1' -f tx -n 1000 > /tmp/d6.pg 2>&1 & G=$!; sleep 4; dm
  x 60 $D load /nmwasm/filters/build/counter.wasm --port 'pipeW}1' --count 1000 --duration 20 $BT --json; dmesg -c | tail -n 12
  kill -KILL $G 2>/dev/null; wait $G
  if /usr/sbin/ip link show v0 >/dev/null 2>&1; then
    for spec in netmap:v0 'netmap:v0*' netmap:v0-0/R 'netmap:v0^'; do
      echo "-- D7 $spec as input"
      x 60 $D load /nmwasm/filters/build/counter.wasm --port "$spec" --duration 2 $BT --json; dmesg -c | tail -n 8
    done
  fi
  echo 0 > /sys/module/netmap/parameters/verbose; unset NMWASM_NETMAP_DEBUG
}

t_monitor() {
  hdr "T8 monitor: pkt-gen rx holds vale0:m; nmwasm counter monitors it as vale0:m/r; pkt-gen tx floods from vale0:mx"
  pkt-gen -i vale0:m -f rx > /tmp/t8.rx 2>&1 & G=$!
  sleep 3
  bg /tmp/t8.out /tmp/t8.err $NMW load filters/build/counter.wasm --port vale0:m/r --count 5000 --duration 300 $BT --json
  P=$BGPID; ready /tmp/t8.err $P 120
  send $P 60 pkt-gen -i vale0:mx -f tx -R 2000 -n 5000 > /tmp/t8.tx 2>&1; tail -n 2 /tmp/t8.tx
  finish $P 30; out /tmp/t8.out /tmp/t8.err
  kill -INT $G 2>/dev/null; sleep 2; kill -KILL $G 2>/dev/null; wait $G; tail -n 3 /tmp/t8.rx
  echo "CHECK T8 monitor: nmwasm packets=$(jget /tmp/t8.out packets) expected 5000; pkt-gen rx: $(grep -oE 'Received [0-9]+ packets' /tmp/t8.rx | tail -1)"
}

# ---- nmA: pipes in the other opening orders, gen --out to a pipe, veth register forms -----------
# readyq ERRFILE PID SECS: like ready, without the 2 s pause (the sender starts at once)
readyq() {
  i=0
  while [ $i -lt "$3" ]; do
    [ -s "$1" ] && { echo "(ready after ${i}s: $(head -1 "$1"))"; return 0; }
    kill -0 "$2" 2>/dev/null || { echo "(exited before ready)"; return 1; }
    sleep 1; i=$((i + 1))
  done
  echo "(not ready after $3 s)"; return 1
}
t_pipe2() {
  hdr "T2d pipe, peer first: pkt-gen tx pipeE{1 running, then nmwasm counter on pipeE}1"
  show "pkt-gen -i 'pipeE{1' -f tx -n 50000 &"
  timeout -s KILL 300 pkt-gen -i 'pipeE{1' -f tx -n 50000 > /tmp/t2d.pg 2>&1 & G=$!
  sleep 4
  bg /tmp/t2d.out /tmp/t2d.err $NMW load filters/build/counter.wasm --port 'pipeE}1' --count 50000 --duration 240 $BT --json
  waitp $BGPID 280; out /tmp/t2d.out /tmp/t2d.err
  sleep 2; kill -KILL $G 2>/dev/null; wait $G; pg_rate /tmp/t2d.pg
  echo "CHECK T2d pipe-in, peer first: packets=$(jget /tmp/t2d.out packets) stoppedBy=$(jget /tmp/t2d.out stoppedBy) expected 50000"

  hdr "T2e pipe out, nmwasm first: gen:count=6000,pps=300 --out pipeF{1, then pkt-gen rx pipeF}1"
  bg /tmp/t2e.out /tmp/t2e.err $NMW load filters/build/counter.wasm --port gen:count=6000,size=64,pps=300 --out 'pipeF{1' $BT --json
  P=$BGPID; readyq /tmp/t2e.err $P 120
  show "pkt-gen -i 'pipeF}1' -f rx &"
  pkt-gen -i 'pipeF}1' -f rx > /tmp/t2e.pg 2>&1 & G=$!
  waitp $P 200; out /tmp/t2e.out /tmp/t2e.err
  sleep 3; kill -INT $G; sleep 2; kill -KILL $G 2>/dev/null; wait $G
  pg_rate /tmp/t2e.pg
  echo "CHECK T2e pipe-out, nmwasm first: nmwasm packets=$(jget /tmp/t2e.out packets) out.packets=$(jget /tmp/t2e.out out.packets) drops=$(jget /tmp/t2e.out out.drops); pkt-gen rx: $(grep -oE 'Received [0-9]+ packets' /tmp/t2e.pg | tail -1)"

  hdr "T2f forwarding, nmwasm first on both pipes: nmwasm pipeG}1 --to pipeH{1; then pkt-gen rx pipeH}1; then pkt-gen tx pipeG{1"
  bg /tmp/t2f.out /tmp/t2f.err $NMW load filters/build/counter.wasm --port 'pipeG}1' --to 'pipeH{1' --count 30000 --duration 300 $BT --json
  P=$BGPID; ready /tmp/t2f.err $P 120
  show "pkt-gen -i 'pipeH}1' -f rx &"
  pkt-gen -i 'pipeH}1' -f rx > /tmp/t2f.pg 2>&1 & G=$!
  sleep 3
  send $P 120 pkt-gen -i 'pipeG{1' -f tx -n 30000 > /tmp/t2f.tx 2>&1; pg_rate /tmp/t2f.tx
  finish $P 30; out /tmp/t2f.out /tmp/t2f.err
  sleep 3; kill -INT $G; sleep 2; kill -KILL $G 2>/dev/null; wait $G
  pg_rate /tmp/t2f.pg
  echo "CHECK T2f forward, nmwasm first: nmwasm packets=$(jget /tmp/t2f.out packets) out.packets=$(jget /tmp/t2f.out out.packets) drops=$(jget /tmp/t2f.out out.drops); pkt-gen rx: $(grep -oE 'Received [0-9]+ packets' /tmp/t2f.pg | tail -1)"
}
# On netmap's default global allocator (buf_num 163840: 327 MiB) a NIC does not fit the 63 MiB
# window: nmwasm says so (exit 2) and names buf_num; with the value it names, the register works.
t_vethreg() {
  /usr/sbin/ip link show v0 >/dev/null 2>&1 || veth_setup
  hdr "TV veth register forms with the default buf_num, then with the buf_num nmwasm names"
  show "$NMW load filters/build/counter.wasm --port 'netmap:v0' --duration 3 $BT --json"
  timeout -s KILL 120 $NMW load filters/build/counter.wasm --port 'netmap:v0' --duration 3 $BT --json > /tmp/tv.out 2>/tmp/tv.err; rc=$?
  cat /tmp/tv.err
  echo "CHECK TV default buf_num: rc=$rc lines=$(cat /tmp/tv.err | wc -l)"
  n=$(sed -n 's/.*echo \([0-9]*\) > \/sys\/module\/netmap\/parameters\/buf_num.*/\1/p' /tmp/tv.err)
  if [ -n "$n" ]; then echo "$n" > /sys/module/netmap/parameters/buf_num; echo "(buf_num=$(cat /sys/module/netmap/parameters/buf_num))"; fi
  for spec in 'netmap:v0' 'netmap:v0-0/R' 'netmap:v0*' 'netmap:v0^'; do
    show "$NMW load filters/build/counter.wasm --port $spec --duration 3 $BT --json"
    timeout -s KILL 120 $NMW load filters/build/counter.wasm --port "$spec" --duration 3 $BT --json > /tmp/tv.out 2>/tmp/tv.err; rc=$?
    grep -av '^status' /tmp/tv.err | head -n 4
    echo "CHECK TV $spec: rc=$rc stoppedBy=$(jget /tmp/tv.out stoppedBy) packets=$(jget /tmp/tv.out packets)"
  done
}
t_cycles() {
  /usr/sbin/ip link show v0 >/dev/null 2>&1 || veth_setup
  # the global allocator must fit the window for v0 (TV shows nmwasm naming this value)
  [ "$(cat /sys/module/netmap/parameters/buf_num)" -gt 27648 ] && echo 27648 > /sys/module/netmap/parameters/buf_num
  hdr "T4c 20 open/close cycles per port through the addon (register, map, unregister; no filter); buf_num=$(cat /sys/module/netmap/parameters/buf_num)"
  x 600 node --import tsx test/native/netmap_cycles.ts vale0:c 'pipeC1}1' 'pipeC2{1' netmap:v0 netmap:v0-0/R 'netmap:v0*' 'netmap:v0^' > /tmp/t4c.out 2>&1
  cat /tmp/t4c.out
  grep CYCLES /tmp/t4c.out | sed 's/^/CHECK T4c /'
}
t_sigkill() {
  hdr "T4k SIGKILL mid-run on pipeK}1 (pkt-gen sending), then start again on pipeK}1, vale0:k"
  bg /tmp/t4k.out /tmp/t4k.err $NMW load filters/build/counter.wasm --port 'pipeK}1' --batch-timeout 60000 --json
  P=$BGPID; ready /tmp/t4k.err $P 180
  timeout -s KILL 60 pkt-gen -i 'pipeK{1' -f tx -n 200000 > /tmp/t4k.pg 2>&1 & G=$!
  sleep 6; show "kill -KILL nmwasm"; kill -KILL $P; wait $P; echo "[nmwasm rc=$?]"
  kill -KILL $G 2>/dev/null; wait $G
  for spec in 'pipeK}1' vale0:k; do
    # NB: under TCG nmwasm takes 10-30 s to start; a --duration that ends during start-up
    # stops the run inside nmwasm_init, which exits 2 ("ran longer than its start budget")
    show "nmwasm load counter.wasm --port $spec --duration 45"
    timeout -s KILL 240 $NMW load filters/build/counter.wasm --port "$spec" --duration 45 --batch-timeout 60000 --json > /tmp/t4r.out 2>/tmp/t4r.err; rc=$?
    grep -av '^status' /tmp/t4r.err | head -n 3
    echo "CHECK T4k start after SIGKILL $spec: rc=$rc stoppedBy=$(jget /tmp/t4r.out stoppedBy)"
  done
}
t_reopen2() {
  hdr "T4b CLI open/close 20 times (vale0:r, --duration 1), start budget 60 s (TCG): rc and first error line"
  ok=0; i=1
  while [ $i -le 20 ]; do
    timeout -s KILL 180 $NMW load filters/build/counter.wasm --port vale0:r --duration 1 --batch-timeout 60000 --json > /tmp/t4b.out 2>/tmp/t4b.err; rc=$?
    [ $rc -eq 0 ] && ok=$((ok + 1)) || { echo "run $i rc=$rc: $(grep -av '^status' /tmp/t4b.err | grep -av 'netmap: /dev/netmap exists\|PASS ->' | head -n 1)"; }
    i=$((i + 1))
  done
  echo "CHECK T4b CLI reopen vale0:r: $ok/20 runs exited 0 ($(el))"
  hdr "T4p open/close 20 times on a pipe and on a VALE port as output"
  ok=0; i=1
  while [ $i -le 20 ]; do
    timeout -s KILL 180 $NMW load filters/build/counter.wasm --port 'pipeO}1' --duration 1 --batch-timeout 60000 --json > /tmp/t4p.out 2>/tmp/t4p.err; rc=$?
    [ $rc -eq 0 ] && ok=$((ok + 1)) || { echo "run $i rc=$rc: $(tail -n 2 /tmp/t4p.err)"; }
    i=$((i + 1))
  done
  echo "CHECK T4p reopen pipe: $ok/20 runs exited 0 ($(el))"
  ok=0; i=1
  while [ $i -le 20 ]; do
    timeout -s KILL 180 $NMW load filters/build/counter.wasm --port gen:count=100 --out vale0:o --batch-timeout 60000 --json > /tmp/t4o.out 2>/tmp/t4o.err; rc=$?
    [ $rc -eq 0 ] && ok=$((ok + 1)) || { echo "run $i rc=$rc: $(tail -n 2 /tmp/t4o.err)"; }
    i=$((i + 1))
  done
  echo "CHECK T4o reopen vale output: $ok/20 runs exited 0 ($(el))"
}

setup
for t in $TESTS; do
  case "$t" in
    all) t_vale; t_pipe; t_veth; t_monitor; t_reopen; t_bad; t_rate; t_unit ;;
    debug) t_debug ;; ratevale) t_ratevale ;; vethsetup) veth_setup ;;
    vale) t_vale ;; pipe) t_pipe ;; pipe2) t_pipe2 ;; vethreg) t_vethreg ;; reopen2) t_reopen2 ;; cycles) t_cycles ;; sigkill) t_sigkill ;; monitor) t_monitor ;; veth) t_veth ;; reopen) t_reopen ;; bad) t_bad ;; rate) t_rate ;; unit) t_unit ;;
    *) echo "unknown test $t" ;;
  esac
done
hdr "end"
dmesg | grep -iE 'netmap|BUG|WARN|Oops' | tail -n 20

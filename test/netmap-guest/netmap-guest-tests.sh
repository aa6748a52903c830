#!/bin/sh
# The netmap guest tests (docs/PORTS.md "verified in the netmap guest"), for the netmap guest
# tools (/work/shared/tools/netmap-guest: build.sh, run.sh). Run:
#   WORK=DIR NETMAP_EXTMEM=0|1 GUEST_TESTS=test/netmap-guest/netmap-guest-tests.sh bash build.sh CHECKOUT [NETMAP_SRC]
#   WORK=DIR TIMEOUT=2400 KARGS=no_timer_check bash run.sh "vale pipe monitor veth"
# Runs inside the qemu guest (busybox sh, as /init's child): loads netmap.ko and veth.ko, then
# runs nmwasm's netmap backend against the real module. Every command has a timeout.
# Tests to run: kernel parameter nmtests=a,b,... (default all): see the case at the bottom.
# Output: "### NAME" headers, "$ command" lines, raw output, and "CHECK NAME: ..." lines.
# Helpers: lib.sh; the memory model, pipes, open/close cycles: memory-pipes-cycles.sh;
# monitors, outputs, rate: monitors-outputs-rate.sh (all in this directory).
cd /nmwasm || exit 1
. test/netmap-guest/lib.sh
. test/netmap-guest/memory-pipes-cycles.sh
. test/netmap-guest/monitors-outputs-rate.sh

# ---- the basics: VALE, pipes, veth host-control, rate, a monitor ----
t_vale() {
  hdr "T1 VALE unpaced: pkt-gen tx 100000 on vale0:0 -> pkt-gen rx on vale0:1, then -> nmwasm counter on vale0:1 (the receive ratio)"
  x 60 $NMW load filters/build/counter.wasm --port netmap:vale0:1 --count 10
  pkt-gen -i vale0:1 -f rx > /tmp/t1.rx 2>&1 & G=$!; sleep 3
  x 60 pkt-gen -i vale0:0 -f tx -n 100000 > /tmp/t1.rxtx 2>&1; grep -E '^Speed' /tmp/t1.rxtx | tail -n 1
  sleep 2; stoppg $G; grep -E '^Received' /tmp/t1.rx | tail -n 1
  bg /tmp/t1.out /tmp/t1.err $NMW load filters/build/counter.wasm --port vale0:1 --count 100000 --duration 300 $BT --json
  P=$BGPID; ready /tmp/t1.err $P 180
  x 30 vale-ctl
  send $P 60 pkt-gen -i vale0:0 -f tx -n 100000 > /tmp/t1.pg 2>&1; pg_rate /tmp/t1.pg; tail -n 4 /tmp/t1.pg
  finish $P 30; out /tmp/t1.out /tmp/t1.err
  echo "CHECK T1 vale unpaced: nmwasm packets=$(jget /tmp/t1.out packets) stoppedBy=$(jget /tmp/t1.out stoppedBy) of 100000; pkt-gen rx $(rxn /tmp/t1.rx) of 100000 (same sender, same boot); ratio nmwasm/pkt-gen rx = $(node -e 'const a=+process.argv[1],b=+process.argv[2];console.log(b>0?(a/b).toFixed(3):"?")' "$(jget /tmp/t1.out packets)" "$(rxn /tmp/t1.rx)")"
  hdr "T1b VALE, paced: pkt-gen -R 2000 -n 20000 (VALE drops what a full ring cannot take: pacing shows whether RX keeps going)"
  bg /tmp/t1b.out /tmp/t1b.err $NMW load filters/build/counter.wasm --port vale0:2 --count 20000 --duration 300 $BT --json
  P=$BGPID; ready /tmp/t1b.err $P 180
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
  # NB: not x: its [rc=] line would follow nmwasm's JSON, which jget reads as the last stdout line
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

t_veth() {
  veth_setup
  hdr "T3 baseline: no nmwasm"
  traffic base
  echo "CHECK T3 baseline: $(grep -o '[0-9]* packets received' /tmp/ping.base) / $(cat /tmp/udp.base)"
  for spec in 'netmap:v0' 'netmap:v0*' 'netmap:v0-0/R'; do
    tag=$(echo "$spec" | tr -c 'a-z0-9\n' '_')
    hdr "T3 host-control.wasm --port $spec"
    # bgr: waits until the run is going (retries a register that fails)
    if bgr /tmp/t3$tag.out /tmp/t3$tag.err $NMW load filters/build/host-control.wasm --port "$spec" $BT --json; then sleep 15; traffic "$tag"; fi
    stop $P 60; out /tmp/t3$tag.out /tmp/t3$tag.err
    echo "CHECK T3 $spec: $(grep -o '[0-9]* packets received' /tmp/ping.$tag 2>/dev/null) / $(cat /tmp/udp.$tag 2>/dev/null) / verdicts host=$(jget /tmp/t3$tag.out verdicts.host) drop=$(jget /tmp/t3$tag.out verdicts.drop) filterStats=$(jget /tmp/t3$tag.out filterStats | tr -d '\n') / allocator: $(grep -o 'runs on a private allocator of [0-9]* MiB' /tmp/t3$tag.err | head -1)"
    x 40 /usr/sbin/ip netns exec ns1 ping -c 1 -W 3 10.0.0.1 > /dev/null 2>&1; echo "(ping after close: rc=$?)"
  done
  hdr "T3h netmap:v0^ (host rings only) beside pkt-gen rx on netmap:v0, which holds the hardware rings in netmap mode: the stack's frames land in the host RX ring"
  if bgr /tmp/t3h.out /tmp/t3h.err $NMW load filters/build/counter.wasm --port 'netmap:v0^' $BT --json; then
    show "pkt-gen -i netmap:v0 -f rx &"; pkt-gen -i netmap:v0 -f rx > /tmp/t3h.pg 2>&1 & G=$!; sleep 5
    x 40 /usr/sbin/ip neigh flush dev v0; x 40 ping -c 3 -W 2 10.0.0.2 > /tmp/ping.h 2>&1; tail -n 2 /tmp/ping.h
    sleep 3
  fi
  stop $P 60; stoppg $G; out /tmp/t3h.out /tmp/t3h.err
  echo "CHECK T3 netmap:v0^ beside pkt-gen on v0: nmwasm packets=$(jget /tmp/t3h.out packets) (the stack's ARP/ICMP for 10.0.0.2: expected > 0; PASS on a host ring is counted only) / warning at start: $(grep -c 'host RX ring only while' /tmp/t3h.err)"
  dmesg | grep -i netmap | tail -n 10
}
t_rate() {
  hdr "T6 rate on a pipe (netmap pipes hold the sender back when the receiver's ring is full: the sender's speed is the receiver's): pkt-gen tx -> pkt-gen rx, then pkt-gen tx -> nmwasm counter, 300000 60-byte frames each"
  N=300000
  for round in 1 2; do
    show "pkt-gen -i 'pipeR}$round' -f rx &"
    pkt-gen -i "pipeR}$round" -f rx > /tmp/t6a.pg 2>&1 & G=$!
    sleep 3
    x 120 pkt-gen -i "pipeR{$round" -f tx -n $N > /tmp/t6a.tx 2>&1; grep -E '^Speed' /tmp/t6a.tx | tail -n 1
    sleep 2; stoppg $G
    echo "CHECK T6 round $round pkt-gen rx: $(rxn /tmp/t6a.pg) of $N, sender $(grep -E '^Speed' /tmp/t6a.tx | tail -n 1 | cut -d' ' -f2-3)"
    bg /tmp/t6b.out /tmp/t6b.err $NMW load filters/build/counter.wasm --port "pipeS}$round" --duration 300 $BT --json
    P=$BGPID; ready /tmp/t6b.err $P 180
    send $P 120 pkt-gen -i "pipeS{$round" -f tx -n $N > /tmp/t6b.tx 2>&1; grep -E '^Speed' /tmp/t6b.tx | tail -n 1
    sleep 3; stop $P 60; out /tmp/t6b.out /tmp/t6b.err; cat /tmp/t6b.tx | tail -n 4
    echo "CHECK T6 round $round nmwasm: packets=$(jget /tmp/t6b.out packets) of $N, sender $(grep -E '^Speed' /tmp/t6b.tx | tail -n 1 | cut -d' ' -f2-3); pipe rate ratio nmwasm/pkt-gen rx = $(node -e 'const f=(s)=>{const m=/([0-9.]+) ([KM]?)pps/.exec(s)||[];return +m[1]*({K:1e3,M:1e6}[m[2]]||1)};const a=f(process.argv[1]),b=f(process.argv[2]);console.log(b>0?(a/b).toFixed(3):"?")' "$(grep -E '^Speed' /tmp/t6b.tx | tail -n 1)" "$(grep -E '^Speed' /tmp/t6a.tx | tail -n 1)")"
  done
  hdr "T6p what bounds it: the same pipe run with pass.wasm (PASS for every slot, reads no packet byte) instead of the counter"
  bg /tmp/t6p.out /tmp/t6p.err $NMW load filters/build/fixtures/pass.wasm --port "pipeS}9" --duration 300 $BT --json
  P=$BGPID; ready /tmp/t6p.err $P 180
  send $P 120 pkt-gen -i "pipeS{9" -f tx -n $N > /tmp/t6p.tx 2>&1; grep -E '^Speed' /tmp/t6p.tx | tail -n 1
  sleep 3; stop $P 60
  echo "CHECK T6p pass.wasm: packets=$(jget /tmp/t6p.out packets) of $N batches=$(jget /tmp/t6p.out batches), sender $(grep -E '^Speed' /tmp/t6p.tx | tail -n 1 | cut -d' ' -f2-3)"
  hdr "T6g the host loop alone in this guest: pass.wasm on gen:count=$N (no netmap, no kernel)"
  show "$NMW load filters/build/fixtures/pass.wasm --port gen:count=$N,size=64 --json"; timeout -s KILL 300 $NMW load filters/build/fixtures/pass.wasm --port gen:count=$N,size=64 $BT --json > /tmp/t6g.out 2>/tmp/t6g.err
  tail -n 3 /tmp/t6g.err
  echo "CHECK T6g pass.wasm on gen: packets=$(jget /tmp/t6g.out packets) elapsedMs=$(jget /tmp/t6g.out elapsedMs) batches=$(jget /tmp/t6g.out batches) -> $(node -e 'console.log(Math.round(+process.argv[1]/(+process.argv[2]/1000)))' "$(jget /tmp/t6g.out packets)" "$(jget /tmp/t6g.out elapsedMs)") pps"
}
# t_tick: the watchdog tick's cost under emulation, paired in one boot: the same pipe run with
# --batch-timeout 20 (tick 2 ms) and 500 (tick 50 ms), A B A B
t_tick() {
  N=300000
  hdr "T6t the watchdog tick: counter on a pipe, --batch-timeout 20 (2 ms tick) vs 500 (50 ms tick), interleaved"
  for round in 1 2; do
    for bt in 20 500; do
      bg /tmp/t6t.out /tmp/t6t.err $NMW load filters/build/counter.wasm --port "pipeT$bt}$round" --duration 300 --batch-timeout $bt --status-interval 1 --json
      P=$BGPID; ready /tmp/t6t.err $P 180
      send $P 120 pkt-gen -i "pipeT$bt{$round" -f tx -n $N > /tmp/t6t.tx 2>&1
      sleep 3; stop $P 60
      echo "CHECK T6t round $round batch-timeout $bt: packets=$(jget /tmp/t6t.out packets) of $N faults=$(jget /tmp/t6t.out faultVerdicts), sender $(grep -E '^Speed' /tmp/t6t.tx | tail -n 1 | cut -d' ' -f2-3)"
    done
  done
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

setup
for t in $TESTS; do
  case "$t" in
    all) t_vale; t_pipe; t_veth; t_monitor; t_reopen; t_bad; t_rate; t_unit ;;
    vale) t_vale ;; pipe) t_pipe ;; veth) t_veth ;; rate) t_rate ;; monitor) t_monitor ;; vethsetup) veth_setup ;;
    debug) t_debug ;; ratevale) t_ratevale ;; pipe2) t_pipe2 ;; vethreg) t_vethreg ;; reopen) t_reopen ;; reopen2) t_reopen2 ;;
    cycles) t_cycles ;; sigkill) t_sigkill ;; bad) t_bad ;; unit) t_unit ;;
    mon) t_mon ;; mont) t_mont ;; out) t_out ;; vrate) t_vrate ;; vab) t_vab ;; r1slow) t_r1slow ;; vcap) t_vcap ;; tick) t_tick ;; nic2nic) t_nic2nic ;;
    *) echo "unknown test $t" ;;
  esac
done
hdr "end"
dmesg | grep -iE 'netmap|BUG|WARN|Oops' | tail -n 20

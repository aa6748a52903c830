# Guest tests of netmap's own memory model (issue 10 item 1): open/close cycles, SIGKILL, bad
# names, VALE rate, the unit tests, pipes in every opening order, veth register forms.
# Sourced by netmap-guest-tests.sh (helpers: lib.sh).

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

t_pipe2() {
  hdr "T2d pipe, peer first: pkt-gen tx pipeE{1 running, then nmwasm counter on pipeE}1"
  show "pkt-gen -i 'pipeE{1' -f tx -n 50000 &"
  timeout -s KILL 300 pkt-gen -i 'pipeE{1' -f tx -n 50000 > /tmp/t2d.pg 2>&1 & G=$!
  sleep 4
  bg /tmp/t2d.out /tmp/t2d.err $NMW load filters/build/counter.wasm --port 'pipeE}1' --count 50000 --duration 240 $BT --json
  waitp $BGPID 280; out /tmp/t2d.out /tmp/t2d.err
  sleep 2; kill -KILL $G 2>/dev/null; wait $G; pg_rate /tmp/t2d.pg
  echo "CHECK T2d pipe-in, peer first: packets=$(jget /tmp/t2d.out packets) stoppedBy=$(jget /tmp/t2d.out stoppedBy) expected 50000"

  hdr "T2e pipe out, nmwasm first: gen:count=3000,pps=100 --out pipeF{1, then pkt-gen rx pipeF}1 (within the 10 s of traffic the 1,024-slot ring holds)"
  bg /tmp/t2e.out /tmp/t2e.err $NMW load filters/build/counter.wasm --port gen:count=3000,size=64,pps=100 --out 'pipeF{1' $BT --json
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
  hdr "TV veth register forms on netmap's default global allocator (buf_num=$(cat /sys/module/netmap/parameters/buf_num)): the allocator donor"
  for spec in 'netmap:v0' 'netmap:v0-0/R' 'netmap:v0*' 'netmap:v0^'; do
    show "$NMW load filters/build/counter.wasm --port $spec --duration 3 $BT --json"
    timeout -s KILL 180 $NMW load filters/build/counter.wasm --port "$spec" --duration 3 $BT --json > /tmp/tv.out 2>/tmp/tv.err; rc=$?
    grep -av '^status' /tmp/tv.err | head -n 4
    echo "CHECK TV default buf_num $spec: rc=$rc stoppedBy=$(jget /tmp/tv.out stoppedBy) / $(grep -o 'runs on a private allocator of [0-9]* MiB' /tmp/tv.err | head -1)"
  done
  hdr "TV2 v0 held by pkt-gen on the global allocator first: nmwasm cannot move it (exit 2, one line)"
  show "pkt-gen -i netmap:v0 -f rx &"; pkt-gen -i netmap:v0 -f rx > /tmp/tv2.pg 2>&1 & G=$!; sleep 4
  x 180 $NMW load filters/build/counter.wasm --port 'netmap:v0-0/R' --duration 3 $BT > /tmp/tv2.out 2>/tmp/tv2.err; rc=$?
  cat /tmp/tv2.err
  stoppg $G
  echo "CHECK TV2 v0 held elsewhere on allocator 1: rc=$rc lines=$(grep -cv '^status' /tmp/tv2.err) ENETMAP_MEM=$(grep -c 'already in netmap mode in another process' /tmp/tv2.err)"
  hdr "TV3 pkt-gen on v0 after nmwasm holds it: pkt-gen maps the donor's region"
  bgr /tmp/tv3.out /tmp/tv3.err $NMW load filters/build/counter.wasm --port 'netmap:v0-0/R' --duration 300 $BT --json
  x 60 pkt-gen -i netmap:v0-0 -f tx -n 100 -R 100 > /tmp/tv3.pg 2>&1; grep -E 'Sent|^Speed|error|fail' /tmp/tv3.pg | tail -n 2
  stop $P 60
  echo "CHECK TV3 pkt-gen beside nmwasm on the donor: pkt-gen rc=$(grep -c 'Sent 100 packets' /tmp/tv3.pg) (1 = sent its 100)"
  n=27648
  echo "$n" > /sys/module/netmap/parameters/buf_num; echo "(buf_num=$(cat /sys/module/netmap/parameters/buf_num): the global allocator fits the window, no donor)"
  for spec in 'netmap:v0' 'netmap:v0*'; do
    timeout -s KILL 180 $NMW load filters/build/counter.wasm --port "$spec" --duration 3 $BT --json > /tmp/tv.out 2>/tmp/tv.err; rc=$?
    echo "CHECK TV buf_num=$n $spec: rc=$rc stoppedBy=$(jget /tmp/tv.out stoppedBy) donor=$(grep -c 'private allocator' /tmp/tv.err)"
  done
}
t_cycles() {
  /usr/sbin/ip link show v0 >/dev/null 2>&1 || veth_setup
  for n in default 27648; do
    [ "$n" != default ] && echo "$n" > /sys/module/netmap/parameters/buf_num
    hdr "T4c 20 open/close cycles per port through the addon (register, map, unregister; no filter); buf_num=$(cat /sys/module/netmap/parameters/buf_num) (the veth on a donor when the global allocator does not fit)"
    x 900 node --import tsx test/netmap-guest/netmap_cycles.ts vale0:c 'pipeC1}1' 'pipeC2{1' netmap:v0 netmap:v0-0/R 'netmap:v0*' 'netmap:v0^' > /tmp/t4c.out 2>&1
    cat /tmp/t4c.out
    grep CYCLES /tmp/t4c.out | sed "s/^/CHECK T4c buf_num=$n /"
  done
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

# Guest tests of netmap monitors, outputs/forwarding and rate (issue 10 items 5, 7, 8).
# Sourced by netmap-guest-tests.sh (helpers: lib.sh).

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

# t_vcap (done-when 1): the receive capacity on VALE, nmwasm against pkt-gen rx with the same
# sender in the same boot. VALE drops what a full RX ring cannot take and counts it nowhere,
# so each receiver is given 100,000 frames at rising paced rates, and the ratio compares the
# highest rate at which each received every frame. nmwasm runs once (warmed up with 5,000
# frames at 5 kpps: under TCG the first batches run code qemu has not translated yet) and is
# read between bursts with `nmwasm stats`.
nmstat() { $NMW stats vcap --json 2>/tmp/c.stats.err | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{console.log(JSON.parse(s).clauses[0].packets)}catch{console.log("?")}})'; }
t_vcap() {
  RATES="10000 25000 50000 100000 200000 400000 0"
  hdr "T1c VALE receive capacity: 100000 frames per rate ($RATES; 0 = unpaced) from pkt-gen tx on vale7:0"
  for R in $RATES; do
    rarg=""; [ "$R" != 0 ] && rarg="-R $R"
    pkt-gen -i vale7:1 -f rx > /tmp/c.rx 2>&1 & G=$!; sleep 3
    x 120 pkt-gen -i vale7:0 -f tx -n 100000 $rarg > /tmp/c.tx 2>&1; grep -E '^Speed' /tmp/c.tx | tail -n 1
    sleep 2; stoppg $G
    echo "CHECK T1c pkt-gen rx R=$R: $(rxn /tmp/c.rx) of 100000, sender $(grep -E '^Speed' /tmp/c.tx | tail -n 1 | cut -d' ' -f2-3)"
  done
  bgr /tmp/c.out /tmp/c.err $NMW load filters/build/counter.wasm --port vale7:1 --name vcap --duration 900 $BT --json
  send $P 60 pkt-gen -i vale7:0 -f tx -R 5000 -n 5000 > /tmp/c.tx 2>&1; sleep 3
  before=$(nmstat)
  echo "(warm-up: $before of 5000)"
  for R in $RATES; do
    rarg=""; [ "$R" != 0 ] && rarg="-R $R"
    send $P 120 pkt-gen -i vale7:0 -f tx -n 100000 $rarg > /tmp/c.tx 2>&1; grep -E '^Speed' /tmp/c.tx | tail -n 1
    sleep 3
    now=$(nmstat)
    echo "CHECK T1c nmwasm R=$R: $((now - before)) of 100000, sender $(grep -E '^Speed' /tmp/c.tx | tail -n 1 | cut -d' ' -f2-3)"
    before=$now
  done
  stop $P 60; out /tmp/c.out /tmp/c.err
  echo "CHECK T1c nmwasm total: packets=$(jget /tmp/c.out packets) batches=$(jget /tmp/c.out batches) faults=$(jget /tmp/c.out faultVerdicts)"
}

# t_nic2nic: the tutorial's nic2nic on a default build: two interfaces of one run on one
# allocator donor (the output joins the input's), PASS forwarded by buffer swap
t_nic2nic() {
  /usr/sbin/ip link show v0 >/dev/null 2>&1 || veth_setup
  hdr "T9 nic2nic: pkt-gen tx on v1 (ns1) -> netmap:v0 --to netmap:v2 -> v3 (ns2): one donor for both, buffers move by swap"
  /usr/sbin/ip link add v2 type veth peer name v3
  /usr/sbin/ip netns add ns2 && /usr/sbin/ip link set v3 netns ns2
  /usr/sbin/ip link set v2 up; /usr/sbin/ip netns exec ns2 /usr/sbin/ip link set v3 up
  for c in "ethtool -K v2 tx off tso off gso off gro off" "/usr/sbin/ip netns exec ns2 ethtool -K v3 tx off tso off gso off gro off"; do $c >/dev/null 2>&1 || echo "($c failed)"; done
  before=$(/usr/sbin/ip netns exec ns2 cat /sys/class/net/v3/statistics/rx_packets)
  if bgr /tmp/t9.out /tmp/t9.err $NMW load filters/build/counter.wasm --port netmap:v0 --to netmap:v2 --duration 300 $BT --json; then
    x 120 /usr/sbin/ip netns exec ns1 pkt-gen -i v1 -f tx -n 1000 -R 500 > /tmp/t9.pg 2>&1; grep -E 'Sent|^Speed' /tmp/t9.pg | tail -n 2
    sleep 3
  fi
  stop $P 60; out /tmp/t9.out /tmp/t9.err
  after=$(/usr/sbin/ip netns exec ns2 cat /sys/class/net/v3/statistics/rx_packets)
  echo "CHECK T9 nic2nic: nmwasm packets=$(jget /tmp/t9.out packets) out.packets=$(jget /tmp/t9.out out.packets) out.zeroCopy=$(jget /tmp/t9.out out.zeroCopy) out.drops=$(jget /tmp/t9.out out.drops); v3 rx_packets +$((after - before)) (1000 sent from v1); donors: $(grep -c 'runs on a private allocator' /tmp/t9.err) made, $(grep -c 'that another interface of this run is on' /tmp/t9.err) joined"
}

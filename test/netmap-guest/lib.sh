# Shared by the netmap guest scripts (test/netmap-guest/netmap-guest-tests.sh sources it):
# the helpers of the netmap guest tools' guest-tests.sh, module setup, the veth pair and its
# traffic, and the start/ready helpers. Runs inside the qemu guest (busybox sh).
cd /nmwasm || exit 1
NMW="node /nmwasm/dist/nmwasm.mjs"
# nmalt=1: run the /nmwasm-alt copy (build.sh ALT_NMWASM) instead; nmenv=VAR=VAL:VAR=VAL: exported
if grep -q 'nmalt=1' /proc/cmdline && [ -d /nmwasm-alt ]; then NMW="node /nmwasm-alt/dist/nmwasm.mjs"; echo "(using /nmwasm-alt)"; fi
for kv in $(sed -n 's/.*nmenv=\([^ ]*\).*/\1/p' /proc/cmdline | tr ':' ' '); do export "$kv"; echo "(export $kv)"; done
BT="--batch-timeout 30000 --status-interval 1"
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
# ready ERRFILE PID SECS: waits until nmwasm is reading its rings: its first status line
# (BT asks for one a second; nmwasm prints none while the workers still start, when the port
# is open but unread and VALE drops what a sender sends) or it died
ready() {
  i=0
  while [ $i -lt "$3" ]; do
    grep -q '^status:' "$1" 2>/dev/null && { echo "(running after ${i}s: $(head -1 "$1"))"; return 0; }
    kill -0 "$2" 2>/dev/null || { echo "(exited before running)"; return 1; }
    sleep 1; i=$((i + 1))
  done
  echo "(not running after $3 s)"; return 1
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
out() { echo "--- stdout:"; cat "$1"; echo "--- stderr (status lines but the last left out):"; grep -v '^status:' "$2" | tail -n 20; grep '^status:' "$2" | tail -n 1; }
jget() { node -e 'const j=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8").trim().split("\n").pop());const v=process.argv[2].split(".").reduce((o,k)=>o==null?o:o[k],j);console.log(v===undefined?"?":typeof v==="object"?JSON.stringify(v):v)' "$1" "$2" 2>/dev/null || echo "?"; }
pg_rate() { grep -E 'Received|Sent|pps' "$1" | tail -n 3; }

setup() {
  hdr "setup: modules"
  x 30 insmod /lib/modules/netmap.ko
  x 30 insmod /lib/modules/veth.ko
  grep -w netmap /proc/misc
  if [ ! -c /dev/netmap ]; then minor=$(awk '$2=="netmap"{print $1}' /proc/misc); mknod /dev/netmap c 10 "$minor"; fi
  ls -l /dev/netmap
  # nmenv=NMBUFNUM=27648: lower netmap's global buffer pool (no netmap port is open yet) so a
  # NIC's region fits the 63 MiB window as it is; without it (the default) nmwasm moves the
  # NIC to a private allocator of its own size (a VALE port's: the allocator donor)
  if [ -n "$NMBUFNUM" ]; then echo "$NMBUFNUM" > /sys/module/netmap/parameters/buf_num; fi
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

traffic() {
  node /tmp/udprecv.js 35 > /tmp/udp.$1 2>&1 & R=$!
  sleep 4
  x 40 /usr/sbin/ip netns exec ns1 ping -c 3 -W 3 10.0.0.1 > /tmp/ping.$1 2>&1; tail -n 3 /tmp/ping.$1
  x 40 /usr/sbin/ip netns exec ns1 node /tmp/udpsend.js
  wait $R; cat /tmp/udp.$1
}

# bgr OUT ERR CMD...: bg + ready, up to 5 attempts (a register may fail once at random:
# netmap's extmem needed physically contiguous ring objects; kept as a guard)
bgr() {
  o=$1; e=$2; shift 2; try=1
  while [ $try -le 5 ]; do
    bg "$o" "$e" "$@"; P=$BGPID
    if ready "$e" $P 180 && kill -0 $P 2>/dev/null; then echo "(open attempts: $try)"; return 0; fi
    wait $P; tail -n 1 "$e"; try=$((try + 1))
  done
  return 1
}
rxn() { grep -oE 'Received [0-9]+ packets' "$1" | tail -1 | grep -oE '[0-9]+' || echo "?"; }
stoppg() { kill -INT $1 2>/dev/null; sleep 2; kill -KILL $1 2>/dev/null; wait $1; }

# readyq: ready (kept for the scripts that call it)
readyq() { ready "$@"; }

#!/bin/bash
# Compiles the native helpers the project's netmap tests build with g++ (the guest has no
# compiler: the shared netmap-guest tools hand these binaries out through a g++ shim) into
# WORK/prebuilt, from this checkout's sources (native/netmap/, native/core/, ...). Run it
# before netmap-guest/build.sh: build.sh's own helper step predates the regrouping of
# native/ into folders, fails harmlessly and leaves these binaries in place, and build.sh
# copies WORK/prebuilt/* into the initramfs.
# usage: WORK=DIR bash test/netmap-guest/prebuilt.sh [CHECKOUT]
set -euo pipefail
N=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
WORK=${WORK:?set WORK to the netmap-guest work directory}
mkdir -p "$WORK/prebuilt"
g++ -std=c++17 -O1 -Wall -Wextra -Werror -I "$N/native" -o "$WORK/prebuilt/netmap_fake" \
  "$N/test/native/netmap_fake.cc" "$N/native/netmap/netmap_session.cc" -lpthread
g++ -std=c++17 -O0 -Wall -Wextra -Werror -I "$N/native" -o "$WORK/prebuilt/netmap_abi_driver" \
  "$N/test/native/netmap_abi_driver.cc"
echo "prebuilt: $WORK/prebuilt/netmap_fake, $WORK/prebuilt/netmap_abi_driver"

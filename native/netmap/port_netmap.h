// netmap backend entry point (native/netmap/port_netmap.cc); the spec mirrors NetmapPortSpec in
// host/ports/native.ts: the register fields host/ports/portname.ts netmapRegisterFields computed.
#pragma once

#include <memory>
#include <string>

#include "ports/port.h"

namespace nmwasm {

struct NetmapPortSpec {
  std::string name;    // the port name as written, for messages
  std::string nrName;  // nmreq_header.nr_name: "eth0", "vale0:p1", "eth0{1"
  uint32_t nrMode;     // NR_REG_*
  uint32_t nrRingid;
  uint64_t nrFlags;    // NR_*
  uint32_t nrMemId;
  uint32_t txSlots, rxSlots, txRings, rxRings, hostTxRings, hostRxRings;  // @conf, 0 = netmap decides
  bool rx;             // an input port: bind RX rings, one ring worker each
  bool tx;             // an output port: bind TX rings
};

/** Whether /dev/netmap exists now (the netmap kernel module is loaded). */
bool netmapPresent();
/** Opens a netmap port: /dev/netmap, NETMAP_REQ_REGISTER, netmap's region mapped behind the
 * guest rings (extmem when it does not fit the window). Throws NativeError naming the stage that failed (its undo has run). */
std::shared_ptr<Port> openNetmapPort(const NetmapPortSpec& spec, const PortOptions& opts);

}  // namespace nmwasm

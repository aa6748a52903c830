// AF_PACKET backend (packet:IF[-N]): placeholder until the ring implementation lands.
#include "errors.h"
#include "port.h"

namespace nmwasm {

std::shared_ptr<Port> openPacketPort(const LivePortSpec& spec, const PortOptions& opts) {
  throw NativeError("ENOTSUP", spec.name, "", 0, "AF_PACKET ports are not implemented in this build yet");
}

}  // namespace nmwasm

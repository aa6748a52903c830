// Process-wide registry of open ports. Ports live here, not in a worker: the
// addon is loaded once per process, so every worker thread sees the same
// registry, and a ring can be re-attached from a new worker while its port stays
// open. Thread safe (one mutex); ports are shared_ptr so an attached ring keeps
// its port (and packet memory) alive after closePort.
#pragma once

#include <cstdint>
#include <memory>

#include "ports/port.h"

namespace nmwasm {

/** Registers `port` and returns its new id (ids are never reused). */
uint32_t registerPort(std::shared_ptr<Port> port);
/** The port with `id`; throws NativeError EBADPORT naming the id if it is not open. */
std::shared_ptr<Port> findPort(uint32_t id);
/** Removes and returns the port with `id`; throws NativeError EBADPORT if it is not open. */
std::shared_ptr<Port> unregisterPort(uint32_t id);

}  // namespace nmwasm

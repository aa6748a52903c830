// Process-wide port registry (see port_registry.h).
#include "ports/port_registry.h"

#include <mutex>
#include <unordered_map>

#include "core/errors.h"

namespace nmwasm {

namespace {
struct Registry {
  std::mutex mu;
  std::unordered_map<uint32_t, std::shared_ptr<Port>> ports;
  uint32_t nextId = 1;
};

// NB: deliberately leaked so that no worker's exit (or process exit) races its destructor.
Registry& registry() {
  static Registry* r = new Registry();
  return *r;
}

[[noreturn]] void throwBadPort(uint32_t id) {
  throw NativeError("EBADPORT", "", "", 0,
                    "no open port with id " + std::to_string(id) + ": use an id returned by openPort that was not closed");
}
}  // namespace

uint32_t registerPort(std::shared_ptr<Port> port) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  uint32_t id = r.nextId++;
  r.ports.emplace(id, std::move(port));
  return id;
}

std::shared_ptr<Port> findPort(uint32_t id) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  auto it = r.ports.find(id);
  if (it == r.ports.end()) throwBadPort(id);
  return it->second;
}

std::shared_ptr<Port> unregisterPort(uint32_t id) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  auto it = r.ports.find(id);
  if (it == r.ports.end()) throwBadPort(id);
  std::shared_ptr<Port> port = std::move(it->second);
  r.ports.erase(it);
  return port;
}

}  // namespace nmwasm

// benchGen(portId, ring, packets): the generator alone. Calls the port's rxsync on
// `ring` over its whole ring (num_slots - 1 slots a call, the head never moves) until
// `packets` packets were produced or the source ended, and returns the thread's CPU ns
// per packet. No verdicts, no guest, no counters: what a `gen:` port costs beside the
// host. A benchmark only (bench/gen.mjs): it bypasses the ring's shadow state, so the
// port must not be attached to a ring worker.
#include <time.h>

#include "core/addon.h"
#include "bench.h"
#include "core/errors.h"
#include "ports/port_registry.h"

namespace nmwasm {

namespace {

uint64_t threadCpuNs() {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return uint64_t(t.tv_sec) * 1000000000ull + uint64_t(t.tv_nsec);
}

}  // namespace

Napi::Value benchGenJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guardEntry(env, [&]() -> Napi::Value {
    std::shared_ptr<Port> port = findPort(info[0].As<Napi::Number>().Uint32Value());
    const uint32_t ring = info[1].As<Napi::Number>().Uint32Value();
    const double packets = info[2].As<Napi::Number>().DoubleValue();
    if (port->kind() != "gen") throw NativeError("EINVAL", port->name(), "", 0, "benchGen needs a gen: port, got a " + port->kind() + " port");
    if (ring >= port->rings())
      throw NativeError("EINVAL", port->name(), "", 0, "benchGen: ring " + std::to_string(ring) + " out of range (the port has " + std::to_string(port->rings()) + ")");
    RingShadow& sh = port->shadow(ring);
    std::lock_guard<std::mutex> lock(sh.mu);
    const uint32_t per = sh.geo.numSlots - 1;
    double made = 0;
    bool exhausted = false;
    const uint64_t start = threadCpuNs();
    while (made < packets && !exhausted) made += port->rxsync(ring, 0, per, &exhausted);
    const uint64_t elapsed = threadCpuNs() - start;
    Napi::Object out = Napi::Object::New(env);
    out.Set("nsPerPacket", Napi::Number::New(env, made > 0 ? double(elapsed) / made : 0));
    out.Set("packets", Napi::Number::New(env, made));
    return out;
  });
}

}  // namespace nmwasm

// RingHandle: the JS object returned by attachRing (see RingHandle in
// host/ports/native.ts). A thin N-API wrapper over ring_sync.h; sync is the one
// N-API call per batch.
//
// Every method runs in guardEntry (errors.h): none may throw C++ exceptions out,
// because a worker can be terminated while it is inside one of them. The handle's
// destructor (the finalizer) only frees native memory and never throws.
#include <poll.h>
#include <time.h>

#include <cstring>

#include "core/addon.h"
#include "core/errors.h"
#include "ports/port_registry.h"
#include "core/ring_sync.h"

namespace nmwasm {

namespace {

/** Polls `fd` (the port's descriptor for `ring`) up to `waitMs`: true when a sync may find
 * packets. POLLERR/POLLHUP/POLLNVAL (an AF_PACKET socket whose link went down or was
 * deleted, ...) are not data: the port clears the error and looks at its link
 * (Port::pollError), then `waitMs` is slept, so an error that persists can never turn
 * the idle wait into a busy loop; true then, so that the caller's sync sees what is left
 * (or -1 for a deleted interface). */
bool pollReady(Port& port, uint32_t ring, int fd, int waitMs) {
  struct pollfd p = {fd, POLLIN, 0};
  if (::poll(&p, 1, waitMs) <= 0) return false;
  if ((p.revents & (POLLERR | POLLHUP | POLLNVAL)) == 0) return (p.revents & POLLIN) != 0;
  port.pollError(ring);
  if (waitMs > 0) {
    struct timespec rest = {waitMs / 1000, (waitMs % 1000) * 1000000L};
    ::nanosleep(&rest, nullptr);
  }
  return true;
}

class RingHandle : public Napi::ObjectWrap<RingHandle> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "RingHandle",
                       {InstanceMethod<&RingHandle::map>("map"), InstanceMethod<&RingHandle::unmap>("unmap"),
                        InstanceMethod<&RingHandle::layout>("layout"), InstanceMethod<&RingHandle::sync>("sync"),
                        InstanceMethod<&RingHandle::takeTrace>("takeTrace"), InstanceMethod<&RingHandle::wait>("wait"),
                        InstanceMethod<&RingHandle::detach>("detach")});
  }

  explicit RingHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RingHandle>(info) {
    if (info.Length() != 3 || !info[0].IsExternal())
      throw Napi::TypeError::New(info.Env(), "RingHandle cannot be constructed from JS: use attachRing(portId, ring, opts)");
    attachment_.reset(info[0].As<Napi::External<RingAttachment>>().Data());
    portName_ = attachment_->port->name();
    ring_ = attachment_->ring;
    // NB: a raw napi_ref, not Napi::ObjectReference, whose Reset() throws when N-API fails.
    env_ = info.Env();
    if (napi_create_reference(env_, info[1], 1, &countersRef_) != napi_ok) countersRef_ = nullptr;
    if (info[2].IsTypedArray() && napi_create_reference(env_, info[2], 1, &budgetRef_) != napi_ok) budgetRef_ = nullptr;
  }

  ~RingHandle() override { releaseCounters(); }

 private:
  /** The attachment; throws NativeError EDETACHED after detach (call inside guardEntry). */
  RingAttachment& live(Napi::Env) {
    if (!attachment_)
      throw NativeError("EDETACHED", portName_, "", 0,
                        "the handle of ring " + std::to_string(ring_) + " was detached: call attachRing again for a new one");
    return *attachment_;
  }

  /** Drops the references that keep the counters and the budget alive; never throws (plain C calls). */
  void releaseCounters() noexcept {
    if (countersRef_ != nullptr) napi_delete_reference(env_, countersRef_);
    if (budgetRef_ != nullptr) napi_delete_reference(env_, budgetRef_);
    countersRef_ = nullptr;
    budgetRef_ = nullptr;
  }

  /** Checks view/offset and returns the address where the packet memory goes. */
  uint8_t* target(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    RingAttachment& a = live(env);
    Napi::Uint8Array view = info[0].As<Napi::Uint8Array>();
    const size_t offset = static_cast<size_t>(info[1].As<Napi::Number>().Int64Value());
    const size_t memSize = a.port->memSize();
    uint8_t* base = view.Data();
    const size_t page = PacketMemory::pageSize();
    if (reinterpret_cast<uintptr_t>(base + offset) % page != 0)
      throw NativeError("EINVAL", a.port->name(), "", 0,
                                       "map offset " + std::to_string(offset) + " is not page aligned in the wasm memory: use a multiple of " +
                                           std::to_string(page) + " (e.g. NMWASM_WINDOW_BASE) on a view starting at byte 0");
    if (offset > view.ByteLength() || memSize > view.ByteLength() - offset)
      throw NativeError("ERANGE", a.port->name(), "", 0,
                                       "packet memory of " + std::to_string(memSize) + " bytes at offset " + std::to_string(offset) +
                                           " does not fit in the wasm memory of " + std::to_string(view.ByteLength()) +
                                           " bytes: grow the memory or use fewer slots");
    return base + offset;
  }

  Napi::Value map(const Napi::CallbackInfo& info) {
    return guardEntry(info.Env(), [&] {
      uint8_t* at = target(info);
      attachment_->port->memory()->mapAt(at);
      return info.Env().Undefined();
    });
  }

  Napi::Value unmap(const Napi::CallbackInfo& info) {
    return guardEntry(info.Env(), [&] {
      uint8_t* at = target(info);
      attachment_->port->memory()->unmapAt(at);
      return info.Env().Undefined();
    });
  }

  Napi::Value layout(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guardEntry(env, [&]() -> Napi::Value {
      RingAttachment& a = live(env);
      const RingGeometry& g = a.shadow->geo;
      Napi::Object o = Napi::Object::New(env);
      o.Set("ringOfs", Napi::Number::New(env, static_cast<double>(g.ringOfs)));
      o.Set("verdictOfs", Napi::Number::New(env, static_cast<double>(g.verdictOfs)));
      o.Set("numSlots", Napi::Number::New(env, g.numSlots));
      o.Set("bufSize", Napi::Number::New(env, g.bufSize));
      o.Set("memSize", Napi::Number::New(env, static_cast<double>(a.port->memSize())));
      return o;
    });
  }

  Napi::Value sync(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guardEntry(env, [&]() -> Napi::Value {
      RingAttachment& a = live(env);
      const uint32_t done = info[0].As<Napi::Number>().Uint32Value();
      const bool faulted = info[1].ToBoolean().Value();
      int32_t next = syncRing(a, done, faulted);
      // NB: the idle wait folded into the same N-API call (one crossing per batch, not three):
      // nothing now on a port with a descriptor -> poll it up to waitMs, then sync again.
      const int waitMs = info.Length() > 2 ? info[2].As<Napi::Number>().Int32Value() : 0;
      if (next == 0 && waitMs > 0 && !a.port->closed()) {
        const int fd = a.port->pollFd(a.ring);
        if (fd >= 0 && pollReady(*a.port, a.ring, fd, waitMs)) next = syncRing(a, 0, false);
      }
      return Napi::Number::New(env, next);
    });
  }

  Napi::Value takeTrace(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guardEntry(env, [&]() -> Napi::Value {
      std::vector<uint8_t> trace = nmwasm::takeTrace(live(env));
      Napi::Uint8Array out = Napi::Uint8Array::New(env, trace.size());
      if (!trace.empty()) std::memcpy(out.Data(), trace.data(), trace.size());
      return out;
    });
  }

  /** wait(timeoutMs): polls the port's descriptor for this ring (Port::pollFd) for up to
   * timeoutMs; 1 = readable, 0 = timed out, -1 = the port has no descriptor (returns at
   * once). NB: blocks this worker's thread (never the main thread): the idle wait of live ports. */
  Napi::Value wait(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guardEntry(env, [&]() -> Napi::Value {
      RingAttachment& a = live(env);
      const int fd = a.port->closed() ? -1 : a.port->pollFd(a.ring);
      if (fd < 0) return Napi::Number::New(env, -1);
      int timeoutMs = info[0].As<Napi::Number>().Int32Value();
      if (timeoutMs < 0) timeoutMs = 0;
      return Napi::Number::New(env, pollReady(*a.port, a.ring, fd, timeoutMs) ? 1 : 0);
    });
  }

  Napi::Value detach(const Napi::CallbackInfo& info) {
    attachment_.reset();
    releaseCounters();
    return info.Env().Undefined();
  }

  std::unique_ptr<RingAttachment> attachment_;
  std::string portName_;  // for messages after detach
  uint32_t ring_ = 0;
  napi_env env_ = nullptr;
  napi_ref countersRef_ = nullptr;  // keeps the counters' SharedArrayBuffer alive while attached
  napi_ref budgetRef_ = nullptr;    // and the run's budget (opts.budget), when given
};

}  // namespace

Napi::Function defineRingHandleClass(Napi::Env env) { return RingHandle::define(env); }

Napi::Value attachRingJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guardEntry(env, [&]() -> Napi::Value {
    const uint32_t portId = info[0].As<Napi::Number>().Uint32Value();
    const uint32_t ring = info[1].As<Napi::Number>().Uint32Value();
    Napi::Object opts = info[2].As<Napi::Object>();
    std::shared_ptr<Port> port = findPort(portId);
    if (ring >= port->rings())
      throw NativeError("EINVAL", port->name(), "", 0,
                        "ring " + std::to_string(ring) + " does not exist: the port has " + std::to_string(port->rings()) + " input ring(s)");
    Napi::Array outIds = opts.Get("outputs").As<Napi::Array>();
    if (outIds.Length() > 128)
      throw NativeError("EINVAL", port->name(), "", 0, "at most 128 outputs per ring (FORWARD n has 7 bits); got " + std::to_string(outIds.Length()));
    std::vector<std::shared_ptr<Port>> outputs;
    for (uint32_t i = 0; i < outIds.Length(); i++) {
      std::shared_ptr<Port> out = findPort(outIds.Get(i).As<Napi::Number>().Uint32Value());
      if (!out->canTransmit())
        throw NativeError("EINVAL", out->name(), "", 0, "a " + out->kind() + " port cannot be an output here (it has no transmit side): use --out pcap:FILE, a netmap pipe or VALE port, or an interface (netmap:, xdp:, packet:)");
      outputs.push_back(std::move(out));
    }
    Napi::Float64Array counters = opts.Get("counters").As<Napi::Float64Array>();
    if (counters.ElementLength() < static_cast<size_t>(Counter::slots))
      throw NativeError("EINVAL", port->name(), "", 0, "counters must have " + std::to_string(Counter::slots) + " entries, got " +
                                                           std::to_string(counters.ElementLength()));
    const uint8_t faultVerdict = opts.Get("faultVerdict").As<Napi::Number>().Uint32Value() == 1 ? kVerdictPass : kVerdictDrop;
    const bool trace = opts.Get("trace").ToBoolean().Value();
    // The run's budget (--count, and 0 once stopping): one int64 shared by its rings.
    Napi::Value budgetValue = opts.Get("budget");
    int64_t* budget = nullptr;
    if (!budgetValue.IsUndefined()) {
      if (!budgetValue.IsTypedArray() || budgetValue.As<Napi::TypedArray>().TypedArrayType() != napi_bigint64_array ||
          budgetValue.As<Napi::BigInt64Array>().ElementLength() < 1)
        throw NativeError("EINVAL", port->name(), "", 0, "budget must be a BigInt64Array of at least 1 entry (over a SharedArrayBuffer), or left out");
      budget = budgetValue.As<Napi::BigInt64Array>().Data();
    }
    std::unique_ptr<RingAttachment> a = attachRing(port, ring, std::move(outputs), counters.Data(), faultVerdict, trace, budget);
    Napi::External<RingAttachment> ext = Napi::External<RingAttachment>::New(env, a.get());
    Napi::Object handle = env.GetInstanceData<AddonData>()->ringHandleClass.New({ext, counters, budgetValue});
    a.release();  // now owned by the handle
    return handle;
  });
}

/** mapPortMemory(portId, view, offset): maps the port's packet memory into a wasm memory
 * without attaching to a ring (a swap's new instance, mapped ahead while the old instance
 * still serves: both see the same shared pages). Checked like RingHandle.map. */
Napi::Value mapPortMemoryJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guardEntry(env, [&]() -> Napi::Value {
    std::shared_ptr<Port> port = findPort(info[0].As<Napi::Number>().Uint32Value());
    Napi::Uint8Array view = info[1].As<Napi::Uint8Array>();
    const size_t offset = static_cast<size_t>(info[2].As<Napi::Number>().Int64Value());
    const size_t memSize = port->memSize();
    uint8_t* base = view.Data();
    const size_t page = PacketMemory::pageSize();
    if (reinterpret_cast<uintptr_t>(base + offset) % page != 0)
      throw NativeError("EINVAL", port->name(), "", 0, "map offset " + std::to_string(offset) + " is not page aligned in the wasm memory: use a multiple of " + std::to_string(page));
    if (offset > view.ByteLength() || memSize > view.ByteLength() - offset)
      throw NativeError("ERANGE", port->name(), "", 0, "packet memory of " + std::to_string(memSize) + " bytes at offset " + std::to_string(offset) + " does not fit in the wasm memory of " + std::to_string(view.ByteLength()) + " bytes: grow the memory or use fewer slots");
    port->memory()->mapAt(base + offset);
    return env.Undefined();
  });
}

}  // namespace nmwasm

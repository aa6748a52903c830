// CPU time of the ring worker threads, for the main thread's watchdog (host/engine/watchdog.ts):
// a worker registers its own thread under its worker threadId; the watchdog reads that
// thread's CPU clock (pthread_getcpuclockid + clock_gettime) while a guest call runs, so a
// descheduled thread on a loaded machine is never mistaken for a runaway.
//
// A CPU clock id is only valid while its thread exists: once the thread has exited the id
// may fail or, worse, name a new thread that reused the tid. So the registration is
// removed by a thread_local guard whose destructor runs at the thread's exit, under the
// same lock the reader holds while it reads: no read ever sees a dead thread's clock.
#include <napi.h>
#include <pthread.h>
#include <time.h>

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include "core/addon.h"
#include "core/errors.h"

namespace nmwasm {
namespace {

std::mutex clockLock;
std::unordered_map<int64_t, clockid_t>& clocks() {
  static auto* map = new std::unordered_map<int64_t, clockid_t>();  // never destroyed: threads may outlive exit()
  return *map;
}

/** Removes this thread's registration when the thread exits. */
struct Registration {
  int64_t key = -1;
  ~Registration() {
    if (key < 0) return;
    std::lock_guard<std::mutex> hold(clockLock);
    clocks().erase(key);
  }
};
thread_local Registration registration;

}  // namespace

/** registerThreadClock(threadId): makes the calling thread's CPU clock readable under
 * threadId (a worker's threadId) until this thread exits. Throws NativeError on failure. */
Napi::Value registerThreadClockJs(const Napi::CallbackInfo& info) {
  return guardEntry(info.Env(), [&]() -> Napi::Value {
    const int64_t key = info[0].As<Napi::Number>().Int64Value();
    clockid_t cid;
    const int rc = pthread_getcpuclockid(pthread_self(), &cid);
    if (rc != 0) {
      throw NativeError("EWATCHDOG", "", "pthread_getcpuclockid", rc,
                        std::string("cannot read this thread's CPU clock: ") + std::strerror(rc) + "; the watchdog falls back to wall time");
    }
    std::lock_guard<std::mutex> hold(clockLock);
    if (registration.key >= 0 && registration.key != key) clocks().erase(registration.key);
    registration.key = key;
    clocks()[key] = cid;
    return info.Env().Undefined();
  });
}

/** threadCpuMs(threadId): CPU time in ms consumed so far by the registered thread, or -1
 * when no live thread is registered under threadId. Cheap: one lock and one clock_gettime. */
Napi::Value threadCpuMsJs(const Napi::CallbackInfo& info) {
  const int64_t key = info[0].As<Napi::Number>().Int64Value();
  double ms = -1;
  {
    std::lock_guard<std::mutex> hold(clockLock);
    auto it = clocks().find(key);
    struct timespec ts;
    if (it != clocks().end() && clock_gettime(it->second, &ts) == 0) ms = static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
  }
  return Napi::Number::New(info.Env(), ms);
}

/** hardExit(code): ends the process now with `code` (_exit: no atexit handlers, no waiting
 * for threads). Only for the host's stop deadline, after everything it has was written. */
Napi::Value hardExitJs(const Napi::CallbackInfo& info) {
  const int code = info[0].As<Napi::Number>().Int32Value();
  std::fflush(nullptr);
  _exit(code);
}

}  // namespace nmwasm

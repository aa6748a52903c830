// Per-environment (main thread or worker) data of the addon and its entry points.
// Each file defines the entry points of one job; addon.cc registers them.
#pragma once

#include <napi.h>

namespace nmwasm {

/** Per-env state (the addon is loaded in the main thread and in worker threads). */
struct AddonData {
  Napi::FunctionReference ringHandleClass;
};

// ports_api.cc
Napi::Value openPortJs(const Napi::CallbackInfo& info);
Napi::Value closePortJs(const Napi::CallbackInfo& info);
Napi::Value abortPortJs(const Napi::CallbackInfo& info);
/** portLink(id): {link: LinkState, oversize: frames dropped for their size}; checks the link now. */
Napi::Value portLinkJs(const Napi::CallbackInfo& info);
Napi::Value backendsJs(const Napi::CallbackInfo& info);
// ring.cc
Napi::Function defineRingHandleClass(Napi::Env env);
Napi::Value attachRingJs(const Napi::CallbackInfo& info);
Napi::Value mapPortMemoryJs(const Napi::CallbackInfo& info);
// thread_clock.cc
Napi::Value registerThreadClockJs(const Napi::CallbackInfo& info);
Napi::Value threadCpuMsJs(const Napi::CallbackInfo& info);
Napi::Value hardExitJs(const Napi::CallbackInfo& info);
// peercred.cc
Napi::Value peerCredJs(const Napi::CallbackInfo& info);

}  // namespace nmwasm

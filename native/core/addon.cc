// Registration of the nmwasm addon. N-API modules are context aware: Init runs
// once per environment (main thread and every worker), and per-env state lives
// in AddonData (env instance data), never in statics. Process-wide state (the
// port registry) is deliberately shared by all environments.
#include "core/addon.h"

namespace nmwasm {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  data->ringHandleClass = Napi::Persistent(defineRingHandleClass(env));
  env.SetInstanceData<AddonData>(data);  // deleted by N-API when the env goes away
  exports.Set("openPort", Napi::Function::New(env, openPortJs, "openPort"));
  exports.Set("closePort", Napi::Function::New(env, closePortJs, "closePort"));
  exports.Set("portLink", Napi::Function::New(env, portLinkJs, "portLink"));
  exports.Set("abortPort", Napi::Function::New(env, abortPortJs, "abortPort"));
  exports.Set("attachRing", Napi::Function::New(env, attachRingJs, "attachRing"));
  exports.Set("mapPortMemory", Napi::Function::New(env, mapPortMemoryJs, "mapPortMemory"));
  exports.Set("backends", Napi::Function::New(env, backendsJs, "backends"));
  exports.Set("registerThreadClock", Napi::Function::New(env, registerThreadClockJs, "registerThreadClock"));
  exports.Set("threadCpuMs", Napi::Function::New(env, threadCpuMsJs, "threadCpuMs"));
  exports.Set("hardExit", Napi::Function::New(env, hardExitJs, "hardExit"));
  exports.Set("peerCred", Napi::Function::New(env, peerCredJs, "peerCred"));
  return exports;
}

}  // namespace nmwasm

static Napi::Object InitNmwasm(Napi::Env env, Napi::Object exports) { return nmwasm::Init(env, exports); }

NODE_API_MODULE(nmwasm, InitNmwasm)

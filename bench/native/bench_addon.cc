// Registration of nmwasm_bench, the benchmarks' addon (binding.gyp here): the product's port
// entry points the benchmarks drive (openPort, closePort, attachRing) and the benchmark-only
// ones, which the product addon does not carry.
#include "core/addon.h"
#include "bench.h"

namespace nmwasm {

Napi::Object InitBench(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  data->ringHandleClass = Napi::Persistent(defineRingHandleClass(env));
  env.SetInstanceData<AddonData>(data);
  exports.Set("openPort", Napi::Function::New(env, openPortJs, "openPort"));
  exports.Set("closePort", Napi::Function::New(env, closePortJs, "closePort"));
  exports.Set("attachRing", Napi::Function::New(env, attachRingJs, "attachRing"));
  exports.Set("benchFirewallC", Napi::Function::New(env, benchFirewallCJs, "benchFirewallC"));
  exports.Set("benchGen", Napi::Function::New(env, benchGenJs, "benchGen"));
  registerBenchLoop(env, exports);
  return exports;
}

}  // namespace nmwasm

static Napi::Object InitNmwasmBench(Napi::Env env, Napi::Object exports) { return nmwasm::InitBench(env, exports); }

NODE_API_MODULE(nmwasm_bench, InitNmwasmBench)

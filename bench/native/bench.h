// Entry points of the benchmarks' addon (bench_addon.cc registers them).
#pragma once

#include <napi.h>

namespace nmwasm {

// bench_firewall.cc
Napi::Value benchFirewallCJs(const Napi::CallbackInfo& info);
// bench_gen.cc
Napi::Value benchGenJs(const Napi::CallbackInfo& info);
// bench_loop.cc: hugePages, loopOpen, loopRefill, loopCounts, loopClose, cpuNs
void registerBenchLoop(Napi::Env env, Napi::Object exports);

}  // namespace nmwasm

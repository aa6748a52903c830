// The batch-loop harness (bench/c/harness.h) for wasm filters, driven from JavaScript by
// bench/filters.mjs: the same ring work as the C loop (filters_bench loop), in a wasm
// module's memory, so that the only differences between the two sides are the filter
// (wasm vs C) and the crossings (one N-API call and one wasm call per batch, as nmwasm's
// own loop has).
//   hugePages(buffer, offset, bytes)      madvise(MADV_HUGEPAGE) over a part of an ArrayBuffer
//                                         (the wasm memory's window), before it is touched;
//                                         returns madvise's result
//   loopOpen(buffer, offset, size, poolN) lays out a 1024-slot ring (hr_image_init, 2048-byte
//                                         buffers) at buffer + offset, generates the pool
//                                         (size 0 = 64-byte frames, 1 = imix; seed 42, as
//                                         filters_bench) and returns {id, verdictOfs, batch}
//   loopRefill(id)                        hr_loop_refill: the previous batch's verdict walk,
//                                         then the next batch's receive; returns its first slot
//   loopCounts(id)                        {packets, counts: {verdict: packets}}
//   loopClose(id)                         frees the pool (the ring lives in the caller's memory)
//   cpuNs()                               this thread's CPU time in ns (CLOCK_THREAD_CPUTIME_ID)
// NB: the buffer must stay attached and unmoved while a loop is open (a wasm memory that
// never grows); checked once at open, not per batch.
#include <sys/mman.h>

#include <map>
#include <memory>
#include <string>

extern "C" {
#include "harness.h"
}
#include "bench.h"

namespace nmwasm {

namespace {

constexpr uint64_t kSeed = 42;

struct BenchLoop {
  hr_pool pool{};
  hr_loop loop{};
  ~BenchLoop() { hr_pool_free(&pool); }
};

std::map<uint32_t, std::unique_ptr<BenchLoop>> loops;  // main thread only
uint32_t nextId = 1;

uint8_t* bufferRange(const Napi::CallbackInfo& info, size_t bytes) {
  Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
  const double offset = info[1].As<Napi::Number>().DoubleValue();
  if (!(offset >= 0) || offset + double(bytes) > double(ab.ByteLength()))
    throw Napi::RangeError::New(info.Env(), "bench loop: range " + std::to_string(offset) + " + " + std::to_string(bytes) + " is outside the buffer of " + std::to_string(ab.ByteLength()) + " bytes");
  return static_cast<uint8_t*>(ab.Data()) + size_t(offset);
}

BenchLoop& findLoop(const Napi::CallbackInfo& info) {
  auto it = loops.find(info[0].As<Napi::Number>().Uint32Value());
  if (it == loops.end()) throw Napi::Error::New(info.Env(), "bench loop: no open loop with this id");
  return *it->second;
}

Napi::Value hugePagesJs(const Napi::CallbackInfo& info) {
  const size_t bytes = size_t(info[2].As<Napi::Number>().DoubleValue());
  uint8_t* p = bufferRange(info, bytes);
  return Napi::Number::New(info.Env(), hr_huge_pages(p, bytes));
}

Napi::Value loopOpenJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint8_t* ring = bufferRange(info, hr_image_bytes(1024, HR_BUF_SIZE));
  const uint32_t size = info[2].As<Napi::Number>().Uint32Value();
  const uint32_t poolN = info[3].As<Napi::Number>().Uint32Value();
  auto l = std::make_unique<BenchLoop>();
  if (hr_pool_make(&l->pool, poolN, size ? HR_SIZE_IMIX : HR_SIZE_64, kSeed)) throw Napi::Error::New(env, "bench loop: out of memory for the pool");
  hr_image_init(ring, 1024, HR_BUF_SIZE);
  hr_loop_init(&l->loop, ring, &l->pool);
  const uint32_t id = nextId++;
  Napi::Object out = Napi::Object::New(env);
  out.Set("id", id);
  out.Set("verdictOfs", hr_verdict_ofs(1024));
  out.Set("batch", l->loop.batch);
  loops[id] = std::move(l);
  return out;
}

Napi::Value loopRefillJs(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), hr_loop_refill(&findLoop(info).loop));
}

Napi::Value loopCountsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const hr_loop& l = findLoop(info).loop;
  Napi::Object counts = Napi::Object::New(env);
  for (int v = 0; v < 256; v++)
    if (l.counts[v]) counts.Set(std::to_string(v), double(l.counts[v]));
  Napi::Object out = Napi::Object::New(env);
  out.Set("packets", double(l.packets));
  out.Set("counts", counts);
  return out;
}

Napi::Value loopCloseJs(const Napi::CallbackInfo& info) {
  loops.erase(info[0].As<Napi::Number>().Uint32Value());
  return info.Env().Undefined();
}

Napi::Value cpuNsJs(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), double(hr_cpu_ns())); }

}  // namespace

void registerBenchLoop(Napi::Env env, Napi::Object exports) {
  exports.Set("hugePages", Napi::Function::New(env, hugePagesJs, "hugePages"));
  exports.Set("loopOpen", Napi::Function::New(env, loopOpenJs, "loopOpen"));
  exports.Set("loopRefill", Napi::Function::New(env, loopRefillJs, "loopRefill"));
  exports.Set("loopCounts", Napi::Function::New(env, loopCountsJs, "loopCounts"));
  exports.Set("loopClose", Napi::Function::New(env, loopCloseJs, "loopClose"));
  exports.Set("cpuNs", Napi::Function::New(env, cpuNsJs, "cpuNs"));
}

}  // namespace nmwasm

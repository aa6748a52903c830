// N-API entry points openPort / closePort / abortPort (see NativeAddon in
// host/ports/native.ts). The spec was validated by host/ports/portspec.ts; this file only
// copies it into plain C++ structs and dispatches to the backend.
#include "core/addon.h"
#include "core/errors.h"
#include "netmap/port_netmap.h"
#include "ports/port_registry.h"

namespace nmwasm {

namespace {

uint32_t u32(Napi::Object o, const char* key) { return o.Get(key).As<Napi::Number>().Uint32Value(); }
std::string str(Napi::Object o, const char* key) { return o.Get(key).As<Napi::String>().Utf8Value(); }

GenSpec genSpecFrom(Napi::Object spec) {
  GenSpec g{};
  g.name = str(spec, "name");
  g.count = static_cast<uint64_t>(spec.Get("count").As<Napi::Number>().Int64Value());
  g.sizeMin = u32(spec, "sizeMin");
  g.sizeMax = u32(spec, "sizeMax");
  g.imix = spec.Get("imix").ToBoolean().Value();
  g.flows = u32(spec, "flows");
  Napi::Array mix = spec.Get("mix").As<Napi::Array>();
  for (uint32_t i = 0; i < 7; i++) g.mix[i] = i < mix.Length() ? mix.Get(i).As<Napi::Number>().Uint32Value() : 0;
  g.seed = u32(spec, "seed");
  // pps, seq and rings came later: a spec without them (an older caller) gets their defaults.
  g.pps = spec.Get("pps").IsNumber() ? static_cast<uint64_t>(spec.Get("pps").As<Napi::Number>().Int64Value()) : 0;
  g.seq = spec.Get("seq").ToBoolean().Value();
  g.rings = spec.Get("rings").IsNumber() ? u32(spec, "rings") : 1;
  return g;
}

LivePortSpec liveSpecFrom(Napi::Object spec) {
  LivePortSpec l{};
  l.name = str(spec, "name");
  l.ifname = str(spec, "ifname");
  l.queue = spec.Get("queue").As<Napi::Number>().Int32Value();
  l.rings = u32(spec, "rings");
  l.rx = spec.Get("rx").ToBoolean().Value();
  l.tx = spec.Get("tx").ToBoolean().Value();
  l.rxSlots = u32(spec, "rxSlots");
  l.txSlots = u32(spec, "txSlots");
  l.xdpBind = str(spec, "xdpBind");
  l.xdpAttach = str(spec, "xdpAttach");
  l.xdpKernelClasses = spec.Get("xdpKernelClasses").ToBoolean().Value();
  l.flowTtlMs = spec.Get("flowTtlMs").IsNumber() ? u32(spec, "flowTtlMs") : 0;
  l.busyPoll = spec.Get("busyPoll").ToBoolean().Value();
  return l;
}

NetmapPortSpec netmapSpecFrom(Napi::Object spec) {
  NetmapPortSpec n{};
  n.name = str(spec, "name");
  n.nrName = str(spec, "nrName");
  n.nrMode = u32(spec, "nrMode");
  n.nrRingid = u32(spec, "nrRingid");
  n.nrFlags = static_cast<uint64_t>(spec.Get("nrFlags").As<Napi::Number>().Int64Value());
  n.nrMemId = u32(spec, "nrMemId");
  n.txSlots = u32(spec, "txSlots");
  n.rxSlots = u32(spec, "rxSlots");
  n.txRings = u32(spec, "txRings");
  n.rxRings = u32(spec, "rxRings");
  n.hostTxRings = u32(spec, "hostTxRings");
  n.hostRxRings = u32(spec, "hostRxRings");
  n.rx = spec.Get("rx").ToBoolean().Value();
  n.tx = spec.Get("tx").ToBoolean().Value();
  return n;
}

SoftPortSpec softSpecFrom(Napi::Object spec) {
  SoftPortSpec s{};
  s.name = str(spec, "name");
  s.endpoint = str(spec, "endpoint");
  s.peer = str(spec, "peer");
  s.sw = str(spec, "switch");
  s.ring = spec.Get("ring").As<Napi::Number>().Int32Value();
  s.rings = u32(spec, "rings");
  s.slots = u32(spec, "slots");
  s.exclusive = spec.Get("exclusive").ToBoolean().Value();
  s.memId = u32(spec, "memId");
  s.rx = spec.Get("rx").ToBoolean().Value();
  s.tx = spec.Get("tx").ToBoolean().Value();
  return s;
}

}  // namespace

Napi::Value backendsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env);
  uint32_t n = 0;
  out.Set(n++, Napi::String::New(env, "packet"));
  if (netmapPresent()) out.Set(n++, Napi::String::New(env, "netmap"));  // the module is loaded now
#ifdef NMWASM_HAVE_XDP
  out.Set(n++, Napi::String::New(env, "xdp"));
#endif
  return out;
}

Napi::Value openPortJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guardEntry(env, [&]() -> Napi::Value {
    Napi::Object spec = info[0].As<Napi::Object>();
    Napi::Object opts = info[1].As<Napi::Object>();
    PortOptions po{u32(opts, "numSlots"), u32(opts, "bufSize")};
    const std::string kind = str(spec, "kind");
    std::shared_ptr<Port> port;
    if (kind == "gen") {
      port = openGenPort(genSpecFrom(spec), po);
    } else if (kind == "pcap") {
      port = openPcapPort(str(spec, "name"), str(spec, "path"), po);
    } else if (kind == "pcap-out") {
      port = openPcapOutPort(str(spec, "name"), str(spec, "path"));
    } else if (kind == "packet") {
      port = openPacketPort(liveSpecFrom(spec), po);
    } else if (kind == "xdp") {
#ifdef NMWASM_HAVE_XDP
      port = openXdpPort(liveSpecFrom(spec), po);
#else
      throw NativeError("ENOTSUP", str(spec, "name"), "", 0,
                        "AF_XDP backend not built: apt-get install libxdp-dev libbpf-dev pkg-config, then npm rebuild (or use packet:" +
                            str(spec, "ifname") + ")");
#endif
    } else if (kind == "netmap") {
      port = openNetmapPort(netmapSpecFrom(spec), po);
    } else if (kind == "soft") {
      port = openSoftPort(softSpecFrom(spec));
    } else {
      throw NativeError("EINVAL", str(spec, "name"), "", 0, "unknown port kind '" + kind + "': expected gen, pcap, pcap-out, packet, xdp, netmap or soft");
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("name", Napi::String::New(env, port->name()));
    out.Set("rings", Napi::Number::New(env, port->rings()));
    out.Set("memSize", Napi::Number::New(env, static_cast<double>(port->memSize())));
    out.Set("expected", Napi::Number::New(env, static_cast<double>(port->expected())));
    Napi::Array notices = Napi::Array::New(env);
    uint32_t n = 0;
    for (const std::string& line : port->notices()) notices.Set(n++, Napi::String::New(env, line));
    out.Set("notices", notices);
    out.Set("id", Napi::Number::New(env, registerPort(std::move(port))));
    return out;
  });
}

Napi::Value closePortJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guardEntry(env, [&]() -> Napi::Value {
    std::shared_ptr<Port> port = unregisterPort(info[0].As<Napi::Number>().Uint32Value());
    port->close();
    return env.Undefined();
  });
}

Napi::Value portLinkJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guardEntry(env, [&]() -> Napi::Value {
    std::shared_ptr<Port> port = findPort(info[0].As<Napi::Number>().Uint32Value());
    Napi::Object out = Napi::Object::New(env);
    out.Set("link", Napi::Number::New(env, port->checkLink()));
    out.Set("oversize", Napi::Number::New(env, static_cast<double>(port->oversizeDrops())));
    uint64_t drop = 0, pass = 0;
    port->kernelVerdicts(&drop, &pass);
    out.Set("kernelDrop", Napi::Number::New(env, static_cast<double>(drop)));
    out.Set("kernelPass", Napi::Number::New(env, static_cast<double>(pass)));
    return out;
  });
}

Napi::Value abortPortJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guardEntry(env, [&]() -> Napi::Value {
    std::shared_ptr<Port> port = unregisterPort(info[0].As<Napi::Number>().Uint32Value());
    port->abort();
    return env.Undefined();
  });
}

}  // namespace nmwasm

// benchFirewallC(portId, rulesBlob, iterations, defaultAction): the example
// firewall's compiled rule table (filters/packages/firewall/README.md,
// "Compiled rule table") evaluated in plain C over every slot currently filled
// in ring 0 of the port, `iterations` times. A benchmark baseline only: it
// reads the packets, writes nothing, and returns ns/packet and the verdict
// counts of one pass.
#include <time.h>

#include <cstring>
#include <vector>

#include "core/addon.h"
#include "bench.h"
#include "core/errors.h"
#include "ports/port_registry.h"

namespace nmwasm {

namespace {

constexpr uint32_t kRuleSize = 80;

struct Rule {
  uint8_t action, dir, family, proto;
  uint16_t sportLo, sportHi, dportLo, dportHi;
  uint32_t flags;
  uint8_t src[16], srcMask[16], dst[16], dstMask[16];
};

struct PacketKey {
  uint8_t family;  // 0 (no IP header), 4, 6
  uint8_t proto;
  bool hasPorts;
  uint16_t sport, dport;  // host order
  uint8_t src[16], dst[16];
};

inline uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

Rule decodeRule(const uint8_t* p) {
  Rule r;
  r.action = p[0];
  r.dir = p[1];
  r.family = p[2];
  r.proto = p[3];
  auto le16 = [](const uint8_t* q) { return static_cast<uint16_t>(q[0] | (q[1] << 8)); };
  r.sportLo = le16(p + 4);
  r.sportHi = le16(p + 6);
  r.dportLo = le16(p + 8);
  r.dportHi = le16(p + 10);
  r.flags = uint32_t(p[12]) | uint32_t(p[13]) << 8 | uint32_t(p[14]) << 16 | uint32_t(p[15]) << 24;
  std::memcpy(r.src, p + 16, 16);
  std::memcpy(r.srcMask, p + 32, 16);
  std::memcpy(r.dst, p + 48, 16);
  std::memcpy(r.dstMask, p + 64, 16);
  return r;
}

/** Finds the outermost IPv4/IPv6 header (after VLAN tags, MPLS, PPPoE, LLC/SNAP) and the ports. */
void parsePacket(const uint8_t* p, uint32_t len, PacketKey& k) {
  k.family = 0;
  k.hasPorts = false;
  if (len < 14) return;
  uint32_t off = 12;  // at an EtherType
  uint16_t type = be16(p + off);
  while ((type == 0x8100 || type == 0x88A8 || type == 0x9100) && off + 6 <= len) {
    off += 4;
    type = be16(p + off);
  }
  uint32_t l3 = off + 2;
  if (type <= 1500 && l3 + 8 <= len && p[l3] == 0xAA && p[l3 + 1] == 0xAA && p[l3 + 2] == 0x03) {
    type = be16(p + l3 + 6);
    l3 += 8;
  }
  if (type == 0x8847 || type == 0x8848) {  // MPLS: skip to bottom of stack, guess the payload by its version
    while (l3 + 4 <= len && !(p[l3 + 2] & 1)) l3 += 4;
    l3 += 4;
    if (l3 >= len) return;
    type = (p[l3] >> 4) == 4 ? 0x0800 : (p[l3] >> 4) == 6 ? 0x86DD : 0;
  } else if (type == 0x8864) {  // PPPoE session + PPP protocol
    if (l3 + 8 > len) return;
    const uint16_t ppp = be16(p + l3 + 6);
    type = ppp == 0x0021 ? 0x0800 : ppp == 0x0057 ? 0x86DD : 0;
    l3 += 8;
  }
  bool firstFragment = true;
  uint32_t l4;
  if (type == 0x0800) {
    if (l3 + 20 > len) return;
    const uint32_t ihl = (p[l3] & 0x0F) * 4u;
    if ((p[l3] >> 4) != 4 || ihl < 20) return;
    k.family = 4;
    k.proto = p[l3 + 9];
    firstFragment = (be16(p + l3 + 6) & 0x1FFF) == 0;
    std::memcpy(k.src, p + l3 + 12, 4);
    std::memcpy(k.dst, p + l3 + 16, 4);
    l4 = l3 + ihl;
  } else if (type == 0x86DD) {
    if (l3 + 40 > len || (p[l3] >> 4) != 6) return;
    k.family = 6;
    uint8_t nh = p[l3 + 6];
    std::memcpy(k.src, p + l3 + 8, 16);
    std::memcpy(k.dst, p + l3 + 24, 16);
    l4 = l3 + 40;
    for (int guard = 0; guard < 16; guard++) {
      uint32_t extLen;
      if (nh == 0 || nh == 43 || nh == 60 || nh == 135) {
        if (l4 + 2 > len) break;
        extLen = (p[l4 + 1] + 1u) * 8;
      } else if (nh == 44) {
        if (l4 + 8 > len) break;
        if ((be16(p + l4 + 2) & 0xFFF8) != 0) firstFragment = false;
        extLen = 8;
      } else if (nh == 51) {
        if (l4 + 2 > len) break;
        extLen = (p[l4 + 1] + 2u) * 4;
      } else {
        break;
      }
      nh = p[l4];
      l4 += extLen;
    }
    k.proto = nh;
  } else {
    return;
  }
  if ((k.proto == 6 || k.proto == 17) && firstFragment && l4 + 4 <= len) {
    k.hasPorts = true;
    k.sport = be16(p + l4);
    k.dport = be16(p + l4 + 2);
  }
}

inline bool addrMatch(const uint8_t* pkt, const uint8_t* addr, const uint8_t* mask, uint32_t n) {
  uint8_t diff = 0;
  for (uint32_t i = 0; i < n; i++) diff |= static_cast<uint8_t>((pkt[i] & mask[i]) ^ addr[i]);
  return diff == 0;
}

/** First matching rule's action on an RX ring, else `defaultAction`. */
uint8_t evaluate(const std::vector<Rule>& rules, const PacketKey& k, uint8_t defaultAction) {
  for (const Rule& r : rules) {
    if (r.dir == 2) continue;  // "out" rules never match an RX ring
    if (r.family != 0 && r.family != k.family) continue;
    if (r.proto != 0xFF && (k.family == 0 || r.proto != k.proto)) continue;
    if (r.flags & 1) {
      if (!k.hasPorts || k.sport < r.sportLo || k.sport > r.sportHi || k.dport < r.dportLo || k.dport > r.dportHi) continue;
    }
    if (r.family != 0) {
      const uint32_t n = r.family == 4 ? 4 : 16;
      if (!addrMatch(k.src, r.src, r.srcMask, n) || !addrMatch(k.dst, r.dst, r.dstMask, n)) continue;
    }
    return r.action;
  }
  return defaultAction;
}

uint64_t nowNs() {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return uint64_t(t.tv_sec) * 1000000000ull + uint64_t(t.tv_nsec);
}

}  // namespace

Napi::Value benchFirewallCJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guardEntry(env, [&]() -> Napi::Value {
    std::shared_ptr<Port> port = findPort(info[0].As<Napi::Number>().Uint32Value());
    Napi::Uint8Array blob = info[1].As<Napi::Uint8Array>();
    const uint32_t iterations = info[2].As<Napi::Number>().Uint32Value();
    const uint8_t defaultAction = info.Length() > 3 && info[3].IsNumber() ? static_cast<uint8_t>(info[3].As<Napi::Number>().Uint32Value()) : 0;
    if (port->rings() == 0) throw NativeError("EINVAL", port->name(), "", 0, "benchFirewallC needs an input port (pcap: or gen:)");
    if (blob.ByteLength() % kRuleSize != 0)
      throw NativeError("EINVAL", port->name(), "", 0, "rules blob of " + std::to_string(blob.ByteLength()) + " bytes is not a multiple of 80 (one compiled rule each)");
    std::vector<Rule> rules;
    for (size_t o = 0; o < blob.ByteLength(); o += kRuleSize) rules.push_back(decodeRule(blob.Data() + o));

    RingShadow& sh = port->shadow(0);
    std::lock_guard<std::mutex> lock(sh.mu);
    const uint32_t filled = sh.filled();
    uint64_t counts[3] = {0, 0, 0};
    const uint64_t start = nowNs();
    for (uint32_t it = 0; it < iterations; it++) {
      counts[0] = counts[1] = counts[2] = 0;
      uint32_t i = sh.head;
      for (uint32_t n = 0; n < filled; n++) {
        const ShadowSlot& s = sh.slots[i];
        PacketKey k;
        parsePacket(port->bufferAt(sh.geo, s.bufIdx), s.len, k);
        const uint8_t v = evaluate(rules, k, defaultAction);
        counts[v < 3 ? v : 0]++;
        if (++i == sh.geo.numSlots) i = 0;
      }
    }
    const uint64_t elapsed = nowNs() - start;
    const double packets = double(filled) * iterations;
    Napi::Object out = Napi::Object::New(env);
    out.Set("nsPerPacket", Napi::Number::New(env, packets > 0 ? double(elapsed) / packets : 0));
    out.Set("packets", Napi::Number::New(env, filled));
    out.Set("drop", Napi::Number::New(env, double(counts[0])));
    out.Set("pass", Napi::Number::New(env, double(counts[1])));
    out.Set("host", Napi::Number::New(env, double(counts[2])));
    return out;
  });
}

}  // namespace nmwasm

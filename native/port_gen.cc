// gen: port — synthetic traffic, deterministic from the seed (the benchmark source).
//
// Every flow is a pre-built header template (Ethernet + IPv4/IPv6 + TCP/UDP/
// ICMP/ICMPv6 echo, or ARP); per packet only the length fields, an IP id / TCP
// seq / ICMP seq and the checksums are patched, and the payload is zero padding.
//
// Choices (documented for users of gen:):
// - protocol mix: each packet draws its protocol with the mix weights (tcp4 udp4
//   icmp4 tcp6 udp6 icmp6 arp), then one of that protocol's flows uniformly.
//   The `flows` flows are split between the protocols in proportion to the
//   weights, at least one per protocol with a non-zero weight (so the number of
//   distinct 5-tuples is max(flows, protocols in use)).
// - sizes are on-wire sizes incl. FCS (slot len = size - 4), uniform in
//   sizeMin..sizeMax or imix 7:4:1 of 64/594/1518; a frame is never shorter than
//   its own headers (IPv6+TCP needs 74 bytes, i.e. 78 on the wire).
// - addresses: IPv4 10.0.0.0/8, IPv6 fd00::/8, MACs locally administered
//   02:..; destination ports 22/53/80/443 for half of the TCP/UDP flows, else
//   uniform 1..65535; source ports 1024..65535.
// - timestamps: 2023-11-14T22:13:20Z + a seed-derived offset below 1 s, then
//   advancing by each frame's wire time at 10 Gb/s (preamble+IFG included).
#include <algorithm>
#include <cstring>

#include "errors.h"
#include "port.h"

namespace nmwasm {

namespace {

constexpr int kProtoCount = 7;
enum Proto { kTcp4, kUdp4, kIcmp4, kTcp6, kUdp6, kIcmp6, kArp };
constexpr uint32_t kMaxHeader = 96;
constexpr uint64_t kEpochNs = 1700000000ull * 1000000000ull;

/** splitmix64: small, fast, good enough for traffic synthesis. */
struct SplitMix64 {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  uint32_t below(uint32_t n) { return static_cast<uint32_t>(((next() >> 32) * n) >> 32); }
};

inline void put16(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline void put32(uint8_t* p, uint32_t v) {
  put16(p, v >> 16);
  put16(p + 2, v);
}

/** Ones'-complement sum of big-endian 16-bit words (len even). */
inline uint32_t sum16(const uint8_t* p, uint32_t len, uint32_t acc) {
  for (uint32_t i = 0; i < len; i += 2) acc += (uint32_t(p[i]) << 8) | p[i + 1];
  return acc;
}
inline uint16_t fold(uint32_t acc) {
  while (acc >> 16) acc = (acc & 0xFFFF) + (acc >> 16);
  return static_cast<uint16_t>(~acc);
}

struct Flow {
  uint8_t hdr[kMaxHeader];
  uint8_t proto;
  uint8_t hdrLen;    // all headers (the minimum frame length)
  uint8_t l4Ofs;     // 0 for ARP
  uint8_t l4HdrLen;  // bytes of the L4 header summed into its checksum
  uint32_t pseudoSum;  // addresses + protocol of the pseudo header (0 for ICMPv4/ARP)
};

class GenPort : public Port {
 public:
  GenPort(const GenSpec& spec, const PortOptions& opts) : Port(spec.name, "gen"), spec_(spec) {
    setupRings(1, opts.numSlots, opts.bufSize);
    buildFlows();
    SplitMix64 tsRng{uint64_t{spec.seed} ^ 0x7453ull};
    tsBaseNs_ = kEpochNs + tsRng.next() % 1000000000ull;
    rng_.state = uint64_t{spec.seed} * 0x2545F4914F6CDD1Dull + 1;
  }

  uint64_t expected() const override { return spec_.count; }

  uint32_t rxsync(uint32_t ring, uint32_t first, uint32_t count, bool* exhausted) noexcept override {
    RingShadow& sh = shadow(ring);
    if (spec_.count > 0) {
      const uint64_t left = spec_.count - produced_;
      if (left < count) count = static_cast<uint32_t>(left);
    }
    uint32_t i = first;
    for (uint32_t k = 0; k < count; k++) {
      ShadowSlot& s = sh.slots[i];
      const uint32_t len = makePacket(bufferAt(sh.geo, s.bufIdx), sh.geo.bufSize);
      s.len = static_cast<uint16_t>(len);
      s.origLen = len;
      s.flags = 0;
      s.tsNs = tsBaseNs_ + wirePs_ / 1000;
      wirePs_ += uint64_t{len + 4 + 20} * 800;  // 0.8 ns per byte at 10 Gb/s
      if (++i == sh.geo.numSlots) i = 0;
    }
    produced_ += count;
    *exhausted = spec_.count > 0 && produced_ >= spec_.count;
    return count;
  }

 private:
  uint32_t pickSize() {
    if (spec_.imix) {
      const uint32_t r = rng_.below(12);
      return r < 7 ? 64 : r < 11 ? 594 : 1518;
    }
    return spec_.sizeMin + rng_.below(spec_.sizeMax - spec_.sizeMin + 1);
  }

  /** Writes one packet at `buf`, returns its length. NB: hot path — no branches on
   * anything but the protocol, headers copied from the flow template. */
  uint32_t makePacket(uint8_t* buf, uint32_t bufSize) {
    uint32_t r = rng_.below(weightTotal_);
    int p = 0;
    while (r >= cumWeight_[p]) p++;
    const Flow& f = flows_[protoFirst_[p] + rng_.below(protoCount_[p])];
    uint32_t len = pickSize() - 4;
    if (len < f.hdrLen) len = f.hdrLen;
    if (len > bufSize) len = bufSize;
    std::memcpy(buf, f.hdr, f.hdrLen);
    // NB: buffers are reused and a filter may have written into them: the payload
    // must be cleared (zero payload also keeps the L4 checksum a header-only sum).
    std::memset(buf + f.hdrLen, 0, len - f.hdrLen);
    const uint16_t seq = static_cast<uint16_t>(produced_ + (&f - flows_.data()));
    switch (f.proto) {
      case kTcp4: case kUdp4: case kIcmp4: {
        uint8_t* ip = buf + 14;
        put16(ip + 2, len - 14);
        put16(ip + 4, seq);
        put16(ip + 10, 0);
        put16(ip + 10, fold(sum16(ip, 20, 0)));
        break;
      }
      case kTcp6: case kUdp6: case kIcmp6:
        put16(buf + 18, len - 54);
        break;
      default:
        return len;  // ARP: padding only
    }
    uint8_t* l4 = buf + f.l4Ofs;
    const uint32_t l4Len = len - f.l4Ofs;
    uint32_t acc = f.pseudoSum;
    switch (f.proto) {
      case kTcp4: case kTcp6:
        put32(l4 + 4, (uint32_t(seq) << 16) | 1);  // sequence number
        put16(l4 + 16, 0);
        acc += l4Len;
        put16(l4 + 16, fold(sum16(l4, 20, acc)));
        break;
      case kUdp4: case kUdp6: {
        put16(l4 + 4, l4Len);
        put16(l4 + 6, 0);
        acc += l4Len;
        const uint16_t c = fold(sum16(l4, 8, acc));
        put16(l4 + 6, c == 0 ? 0xFFFF : c);
        break;
      }
      default:  // ICMP / ICMPv6 echo request
        put16(l4 + 6, seq);
        put16(l4 + 2, 0);
        if (f.proto == kIcmp6) acc += l4Len;
        put16(l4 + 2, fold(sum16(l4, 8, acc)));
        break;
    }
    return len;
  }

  void buildFlows() {
    uint32_t weightTotal = 0, inUse = 0;
    for (int p = 0; p < kProtoCount; p++) {
      weightTotal += spec_.mix[p];
      if (spec_.mix[p] > 0) inUse++;
    }
    if (weightTotal == 0)
      throw NativeError("EINVAL", name(), "", 0, "gen: the protocol mix has no non-zero weight: give at least one of tcp4 udp4 icmp4 tcp6 udp6 icmp6 arp");
    weightTotal_ = weightTotal;
    // Split the flows between protocols: proportional, at least 1 each, remainder to the largest weights first.
    const uint32_t total = spec_.flows > inUse ? spec_.flows : inUse;
    uint32_t assigned = 0;
    for (int p = 0; p < kProtoCount; p++) {
      protoCount_[p] = spec_.mix[p] == 0 ? 0 : std::max<uint32_t>(1, uint32_t(uint64_t{total} * spec_.mix[p] / weightTotal));
      assigned += protoCount_[p];
    }
    while (assigned < total) {
      int best = -1;
      for (int p = 0; p < kProtoCount; p++)
        if (spec_.mix[p] > 0 && (best < 0 || uint64_t{spec_.mix[p]} * protoCount_[best] > uint64_t{spec_.mix[best]} * protoCount_[p])) best = p;
      protoCount_[best]++;
      assigned++;
    }
    uint32_t cum = 0, first = 0;
    SplitMix64 flowRng{uint64_t{spec_.seed} ^ 0xF10Full};
    flows_.resize(assigned);
    for (int p = 0; p < kProtoCount; p++) {
      cum += spec_.mix[p];
      cumWeight_[p] = cum;
      protoFirst_[p] = first;
      for (uint32_t k = 0; k < protoCount_[p]; k++) buildFlow(flows_[first + k], static_cast<Proto>(p), flowRng);
      first += protoCount_[p];
    }
  }

  static uint16_t pickPort(SplitMix64& rng) {
    static const uint16_t wellKnown[] = {22, 53, 80, 443};
    if (rng.below(2) == 0) return wellKnown[rng.below(4)];
    return static_cast<uint16_t>(1 + rng.below(65535));
  }

  static void buildFlow(Flow& f, Proto proto, SplitMix64& rng) {
    std::memset(&f, 0, sizeof f);
    f.proto = static_cast<uint8_t>(proto);
    uint8_t* h = f.hdr;
    const uint64_t macs = rng.next();
    const uint8_t dstMac[6] = {0x02, 0x00, uint8_t(macs >> 8), uint8_t(macs >> 16), uint8_t(macs >> 24), uint8_t(macs >> 32)};
    const uint8_t srcMac[6] = {0x02, 0x01, uint8_t(macs >> 40), uint8_t(macs >> 48), uint8_t(macs >> 56), uint8_t(macs)};
    std::memcpy(h, proto == kArp ? (const uint8_t*)"\xff\xff\xff\xff\xff\xff" : dstMac, 6);
    std::memcpy(h + 6, srcMac, 6);
    const uint32_t src4 = 0x0A000000u | (static_cast<uint32_t>(rng.next()) & 0x00FFFFFFu);
    uint32_t dst4 = 0x0A000000u | (static_cast<uint32_t>(rng.next()) & 0x00FFFFFFu);
    if (dst4 == src4) dst4 ^= 1;
    const uint8_t l4proto = proto == kTcp4 || proto == kTcp6 ? 6 : proto == kUdp4 || proto == kUdp6 ? 17 : proto == kIcmp4 ? 1 : 58;
    uint8_t l4HdrLen = l4proto == 6 ? 20 : 8;

    if (proto == kArp) {
      put16(h + 12, 0x0806);
      uint8_t* a = h + 14;
      put16(a, 1);
      put16(a + 2, 0x0800);
      a[4] = 6;
      a[5] = 4;
      put16(a + 6, 1);  // request
      std::memcpy(a + 8, srcMac, 6);
      put32(a + 14, src4);
      put32(a + 24, dst4);  // target hardware address stays zero
      f.hdrLen = 42;
      return;
    }
    uint32_t l4Ofs;
    if (proto <= kIcmp4) {
      put16(h + 12, 0x0800);
      uint8_t* ip = h + 14;
      ip[0] = 0x45;
      put16(ip + 6, 0x4000);  // DF
      ip[8] = 64;
      ip[9] = l4proto;
      put32(ip + 12, src4);
      put32(ip + 16, dst4);
      l4Ofs = 34;
      f.pseudoSum = proto == kIcmp4 ? 0 : sum16(ip + 12, 8, 0) + l4proto;
    } else {
      put16(h + 12, 0x86DD);
      uint8_t* ip = h + 14;
      put32(ip, 0x60000000u | (static_cast<uint32_t>(rng.next()) & 0xFFFFF));
      ip[6] = l4proto;
      ip[7] = 64;
      const uint64_t s = rng.next(), d = rng.next();
      uint8_t* src = ip + 8;
      uint8_t* dst = ip + 24;
      src[0] = dst[0] = 0xFD;
      put16(src + 6, uint32_t(s >> 48));  // subnet
      put16(dst + 6, uint32_t(d >> 48));
      put32(src + 12, static_cast<uint32_t>(s));  // interface id
      put32(dst + 12, static_cast<uint32_t>(d) | 1);
      l4Ofs = 54;
      f.pseudoSum = sum16(ip + 8, 32, 0) + l4proto;
    }
    uint8_t* l4 = h + l4Ofs;
    if (l4proto == 6 || l4proto == 17) {
      put16(l4, 1024 + rng.below(65536 - 1024));
      put16(l4 + 2, pickPort(rng));
      if (l4proto == 6) {
        put32(l4 + 8, static_cast<uint32_t>(rng.next()));  // ack
        l4[12] = 0x50;                                     // data offset 5
        l4[13] = 0x18;                                     // PSH|ACK
        put16(l4 + 14, 64240);
      }
    } else {
      l4[0] = l4proto == 1 ? 8 : 128;  // echo request
      put16(l4 + 4, rng.below(65536));  // identifier
    }
    f.l4Ofs = static_cast<uint8_t>(l4Ofs);
    f.l4HdrLen = l4HdrLen;
    f.hdrLen = static_cast<uint8_t>(l4Ofs + l4HdrLen);
  }

  GenSpec spec_;
  std::vector<Flow> flows_;
  uint32_t cumWeight_[kProtoCount] = {};
  uint32_t protoFirst_[kProtoCount] = {};
  uint32_t protoCount_[kProtoCount] = {};
  uint32_t weightTotal_ = 1;
  SplitMix64 rng_{0};
  uint64_t produced_ = 0;
  uint64_t tsBaseNs_ = 0;
  uint64_t wirePs_ = 0;
};

}  // namespace

std::shared_ptr<Port> openGenPort(const GenSpec& spec, const PortOptions& opts) {
  return std::make_shared<GenPort>(spec, opts);
}

}  // namespace nmwasm

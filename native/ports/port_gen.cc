// gen: port — synthetic traffic, deterministic from the seed (the benchmark source).
//
// Built to never dominate a run (<= 5 ns a packet): everything random is decided at open.
// - Every flow is a pre-built frame (Ethernet + IPv4/IPv6 + TCP/UDP/ICMP/ICMPv6 echo, or
//   ARP, then zero padding) with the checksum sums of its fixed fields precomputed; per
//   packet the frame is copied and only the length fields, an IP id / TCP seq / ICMP seq,
//   the optional sequence trailer and the checksums (from the precomputed sums, never a
//   sum over the bytes) are written.
// - Every (flow, length) pair of the schedules is a pre-built frame (Tmpl: length fields
//   written, the checksum sums of all but the per-packet id folded to 16 bits, a UDP checksum
//   without seq written) when there are at most kMaxTmpl pairs: per packet one copy of 80
//   bytes, the id twice, two 16-bit add-with-carry checksums and two slot stores (fillRun);
//   else the per-flow frames above (fillFlow).
// - Each ring has a precomputed schedule: a table of (flow, length) entries, drawn at
//   open from the seed, replayed cyclically (kSchedMin entries at least, 4 per flow of the
//   ring, so every flow appears). The first table's worth of packets is exactly what drawing per
//   packet gave: (protocol, flow, size) in that order from one stream.
// - Pacing (pps) reads the clock once per rxsync (per batch) and takes what is due.
//
// Choices (documented for users of gen: in docs/PORTS.md):
// - protocol mix: each packet draws its protocol with the mix weights (tcp4 udp4
//   icmp4 tcp6 udp6 icmp6 arp), then one of that protocol's flows uniformly.
//   The `flows` flows are split between the protocols in proportion to the
//   weights, at least one per protocol with a non-zero weight (so the number of
//   distinct 5-tuples is max(flows, protocols in use)).
// - sizes are on-wire sizes incl. FCS (slot len = size - 4), uniform in
//   sizeMin..sizeMax or imix 7:4:1 of 64/594/1518; a frame is never shorter than
//   its own headers (IPv6+TCP needs 74 bytes, i.e. 78 on the wire), plus 8 with seq.
// - addresses: IPv4 10.0.0.0/8, IPv6 fd00::/8, MACs locally administered
//   02:..; destination ports 22/53/80/443 for half of the TCP/UDP flows, else
//   uniform 1..65535; source ports 1024..65535.
// - rings=N: a flow's ring is a hash of its 5-tuple. Ring r's schedule is the part of
//   the one-ring draw stream whose flows hash to r, so the union over rings has the
//   one-ring statistics; `count` is split between rings in proportion to their share
//   of the stream (largest remainder, exact total), and so is `pps`.
// - seq: the last 8 bytes of a frame hold ring << 56 | k, k = 0, 1, ... the ring's
//   frame number (big-endian; with one ring simply 0..count-1), covered by the L4
//   checksum.
// - timestamps: 2023-11-14T22:13:20Z + a seed-derived offset below 1 s, then
//   advancing by each frame's wire time at 10 Gb/s (preamble+IFG included), per ring.
#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/errors.h"
#include "ports/port.h"

namespace nmwasm {

namespace {

constexpr int kProtoCount = 7;
enum Proto { kTcp4, kUdp4, kIcmp4, kTcp6, kUdp6, kIcmp6, kArp };
constexpr uint32_t kFrameCopy = 128;      // bytes of a flow's frame copied per packet (headers + zeros)
constexpr uint32_t kSchedMin = 1u << 14;  // schedule entries per ring, at least (64 KiB: NB: it shares the L2 with the buffers)
constexpr uint32_t kSchedPerFlow = 4;     // ... and at least this many per flow of the port
constexpr uint32_t kStridePad = 64;       // buffer stride = the asked buffer size + one cache line (GenPort)
constexpr uint32_t kLenBits = 11;         // schedule entry: flow << 11 | len (len <= 1514)
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
inline void put64(uint8_t* p, uint64_t v) {
  put32(p, static_cast<uint32_t>(v >> 32));
  put32(p + 4, static_cast<uint32_t>(v));
}

/** Ones'-complement sum of big-endian 16-bit words (len even). Open time only. */
inline uint32_t sum16(const uint8_t* p, uint32_t len, uint32_t acc) {
  for (uint32_t i = 0; i < len; i += 2) acc += (uint32_t(p[i]) << 8) | p[i + 1];
  return acc;
}
/** Folds a sum of at most 2^31 to 16 bits and complements it (no loop). */
inline uint16_t fold(uint32_t acc) {
  acc = (acc & 0xFFFF) + (acc >> 16);
  acc = (acc & 0xFFFF) + (acc >> 16);
  return static_cast<uint16_t>(~acc);
}

/** A big-endian 16-bit value as a native load of its two bytes gives it (and back). */
inline uint16_t memOrder16(uint16_t v) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  return v;
#else
  return static_cast<uint16_t>((v << 8) | (v >> 8));
#endif
}

/** Ones' complement sum of two 16-bit values (0 only when both are 0, as a fold of their sum). */
inline uint16_t onesAdd(uint16_t a, uint16_t b) {
  uint16_t r;
  const bool carry = __builtin_add_overflow(a, b, &r);
  return static_cast<uint16_t>(r + carry);
}

// fillRun is compiled twice on x86-64 with glibc (ifunc picks one at load): for AVX2 (a frame's
// first 64 bytes in two stores instead of four) and for any x86-64.
#if defined(__x86_64__) && defined(__GLIBC__)
#define NMWASM_GEN_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define NMWASM_GEN_CLONES
#endif

/** Copies 64 bytes as two 32-byte vectors (one store each where the caller is compiled for AVX2). */
__attribute__((always_inline)) inline void copy64(uint8_t* dst, const uint8_t* src) {
  typedef uint8_t V32 __attribute__((vector_size(32)));
  V32 a, b;
  std::memcpy(&a, src, 32);
  std::memcpy(&b, src + 32, 32);
  std::memcpy(dst, &a, 32);
  std::memcpy(dst + 32, &b, 32);
}

/** A flow: its pre-built frame and where the fields that vary per packet go. Every flow has
 * every field: a field its protocol lacks is written to the scratch bytes at the end of the
 * buffer (bufSize - 8, never part of a frame), so that building a packet has no branch on
 * the protocol (NB: the protocol is random per packet; a branch on it mispredicts). */
struct Flow {
  alignas(64) uint8_t frame[kFrameCopy];  // headers, variable fields zero, then zero padding
  uint32_t ipSum;      // IPv4 header sum without total length, id and checksum
  uint32_t l4Sum;      // pseudo header (addresses + protocol) + L4 header without its variable fields
  uint16_t l3LenOfs;   // IPv4 total length / IPv6 payload length = len - l3LenSub
  uint16_t l3LenSub;
  uint16_t ipIdOfs;    // IPv4 id
  uint16_t ipCsumOfs;  // IPv4 header checksum
  uint16_t l4LenOfs;   // UDP length
  uint16_t l4IdOfs;    // TCP sequence number (high half; the low half is 1) / ICMP sequence
  uint16_t l4CsumOfs;  // TCP/UDP/ICMP checksum
  uint8_t l4LenMul;    // times the L4 length in the L4 sum (pseudo header, UDP length field)
  uint8_t l4IdMul;     // times the id in the L4 sum
  uint8_t udp;         // a zero UDP checksum is sent as 0xFFFF
  uint8_t proto;
  uint8_t hdrLen;      // all headers (the minimum frame length)
  uint8_t l4Ofs;       // 0 for ARP
  uint32_t ring;       // the ring its 5-tuple hashes to
};

/** A pre-built frame per (flow, length) of the schedules (when there are at most kMaxTmpl
 * such pairs): the flow's frame with its length fields written, and the checksum sums with
 * everything but the per-packet id folded in, so that a packet is one copy of the frame, the
 * id twice and two checksums from a 16-bit add (plus the seq trailer with `seq`). */
struct Tmpl {
  alignas(64) uint8_t frame[kFrameCopy];  // length fields written; id fields and checksums zero
  uint64_t slotWord;   // ShadowSlot bytes 4..11: len, flags 0, origLen = len
  uint32_t wireStep;   // the frame's wire time at 10 Gb/s, in 200 ps
  uint32_t len;
  uint16_t flow;       // the id of packet k is uint16(k + flow)
  uint16_t ipBase;     // IPv4 header sum without the id, folded to 16 bits, in memory byte order (memOrder16)
  uint16_t l4Base;     // L4 sum without the id and the trailer, the same way
  uint16_t l4IdMask;   // 0xFFFF when the id is in the L4 sum (TCP, ICMP), else 0
  uint16_t udpZero;    // 0xFFFF for UDP (a zero checksum is sent as 0xFFFF), else 0
  uint16_t ipIdOfs, ipCsumOfs, l4IdOfs, l4CsumOfs;  // `len` (just past the frame) when the protocol lacks one
  uint32_t extOfs;     // where bytes 64..79 of the frame go: 64, or 0 for a frame of at most 64 (then overwritten)
  uint32_t oddTrailer; // all ones when the seq trailer lies at an odd offset of the L4 data
};
constexpr uint32_t kRunMax = 1u << 16;  // packets of one fillRun (its wire time in 200 ps stays below 2^30)
constexpr uint32_t kMaxTmpl = 1024;  // pre-built frames at most (192 KiB); more pairs: per-flow frames
constexpr long kPrefetch = 8;        // fillRun prefetches the buffer this many packets ahead (for writing)

/** One ring's generator share; only its ring's thread touches it (under the shadow mutex). */
struct alignas(64) GenRing {
  std::vector<uint32_t> sched;  // flow << kLenBits | len
  std::vector<uint32_t> tsched; // the same schedule as byte offsets into tmpls_ (when the port has them)
  uint32_t pos = 0;
  uint64_t quota = 0;           // packets of this ring, 0 = unbounded
  uint64_t produced = 0;
  uint64_t wirePs = 0;
  double share = 0;             // of the one-ring stream
  double ppsRing = 0;           // 0 = as fast as asked
  uint64_t startNs = 0;         // pacing: monotonic time of the first rxsync
};

uint64_t monotonicNs() {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return uint64_t(t.tv_sec) * 1000000000ull + uint64_t(t.tv_nsec);
}

class GenPort : public Port {
 public:
  GenPort(const GenSpec& spec, const PortOptions& opts) : Port(spec.name, "gen"), spec_(spec) {
    const uint32_t rings = spec.rings == 0 ? 1 : spec.rings;
    // NB: buffers a cache line more than asked apart (2112 bytes for 2048): at a power-of-two
    // stride every frame's first line falls into the same few L1/L2 sets (and 4K-aliases the
    // frame written just before), so that writing a batch of frames evicts its own lines; at
    // 2048 + 64 consecutive frames walk through every set. The ring says so (nr_buf_size).
    bufSize_ = opts.bufSize + kStridePad;
    setupRings(rings, opts.numSlots, bufSize_);
    buildFlows();
    SplitMix64 tsRng{uint64_t{spec.seed} ^ 0x7453ull};
    tsBaseNs_ = kEpochNs + tsRng.next() % 1000000000ull;
    gens_.resize(rings);
    buildSchedules();
    splitCount();
    buildTmpls();
  }

  uint64_t expected() const override { return spec_.count; }

  uint32_t rxsync(uint32_t ring, uint32_t first, uint32_t count, bool* exhausted) noexcept override {
    RingShadow& sh = shadow(ring);
    GenRing& g = gens_[ring];
    if (g.sched.empty()) {  // no flow hashes to this ring
      *exhausted = true;  // ends at once, bounded or not
      return 0;
    }
    if (g.quota > 0 && g.quota - g.produced < count) count = static_cast<uint32_t>(g.quota - g.produced);
    if (g.ppsRing > 0 && count > 0) {
      // NB: one clock read per batch; packet k is due at startNs + k / ppsRing.
      const uint64_t now = monotonicNs();
      if (g.startNs == 0) g.startNs = now;
      const double due = std::floor(double(now - g.startNs) * g.ppsRing / 1e9) + 1 - double(g.produced);
      if (due < double(count)) count = due <= 0 ? 0 : static_cast<uint32_t>(due);
    }
    const uint64_t seqTop = uint64_t{ring} << 56;
    if (!tmpls_.empty()) {
      if (spec_.seq) {
        if (tmplShort_) fillTmpl<true, true>(sh, g, first, count, seqTop);
        else fillTmpl<true, false>(sh, g, first, count, seqTop);
      } else {
        if (tmplShort_) fillTmpl<false, true>(sh, g, first, count, seqTop);
        else fillTmpl<false, false>(sh, g, first, count, seqTop);
      }
    } else {
      if (spec_.seq) fillFlow<true>(sh, g, first, count, seqTop);
      else fillFlow<false>(sh, g, first, count, seqTop);
    }
    *exhausted = g.quota > 0 && g.produced >= g.quota;
    return count;
  }

 private:
  /** The fill loop on pre-built (flow, length) frames. NB: hot path — per packet one copy
   * and four 16-bit stores into the frame, two 8-byte stores into the slot; sums kept in
   * memory byte order (a ones' complement sum commutes with swapping bytes: one swap of the
   * id a packet); the loop runs in stretches that wrap neither the schedule nor the ring (no
   * wrap test per packet). kShort: every frame is at most 80 bytes (no test on the length:
   * bytes 64..79 go to 64 or, for a frame of at most 64, to 0 before bytes 0..63 do).
   * A field the protocol lacks is written just past the frame (in a line the frame
   * already dirtied; the frame is all the guest sees).
   * Without seq a UDP checksum is part of the frame (it has no per-packet field). */
  template <bool kSeq, bool kShort>
  void fillTmpl(RingShadow& sh, GenRing& g, uint32_t first, uint32_t count, uint64_t seqTop) noexcept {
    const uint32_t* const sched = g.tsched.data();
    const uint32_t schedLen = static_cast<uint32_t>(g.tsched.size());
    const uint8_t* const tmpls = reinterpret_cast<const uint8_t*>(tmpls_.data());
    ShadowSlot* const slots = sh.slots.data();
    uint8_t* const buffers = bufferAt(sh.geo, 0);
    const uint64_t bufSize = sh.geo.bufSize;
    const uint32_t numSlots = sh.geo.numSlots;
    uint32_t pos = g.pos;
    uint64_t k = g.produced;
    uint64_t wire = g.wirePs / 200;  // wire time in 200 ps (every frame's is a multiple of 800 ps)
    uint32_t i = first;
    uint32_t left = count;
    while (left > 0) {
      const uint32_t run = std::min(std::min(left, kRunMax), std::min(schedLen - pos, numSlots - i));
      // Timestamps: tsBase + wire / 5 = (tsBase + base / 5) + (wire - base) / 5 with base a
      // multiple of 5, and the stretch's (wire - base) small enough for a multiply-shift.
      const uint64_t base = wire - wire % 5;
      const uint32_t rel = fillRun<kSeq, kShort>(sched + pos, slots + i, run, tmpls, buffers, bufSize, k, tsBaseNs_ + base / 5,
                                                 static_cast<uint32_t>(wire - base), seqTop);
      wire = base + rel;
      k += run;
      left -= run;
      pos += run;
      i += run;
      if (pos == schedLen) pos = 0;
      if (i == numSlots) i = 0;
    }
    g.pos = pos;
    g.produced = k;
    g.wirePs = wire * 200;
  }

  /** A stretch of fillTmpl: `run` packets from schedule entry `e` into slot `s` on, packet
   * number k on; `rel` is the wire time in 200 ps past the timestamp `tsNs`; returns it after
   * the stretch. NB: byte stores into the frames may alias anything: everything the loop reads
   * is an argument or a local, or the compiler reloads it from memory after every store. */
  template <bool kSeq, bool kShort>
  __attribute__((noinline)) NMWASM_GEN_CLONES static uint32_t fillRun(const uint32_t* e, ShadowSlot* s, uint32_t run, const uint8_t* const tmpls,
                                                    uint8_t* const buffers, const uint64_t bufSize, uint64_t k, const uint64_t tsNs,
                                                    uint32_t rel, const uint64_t seqTop) noexcept {
    for (const uint32_t* const end = e + run; e != end; e++, s++, k++) {
      const Tmpl& t = *reinterpret_cast<const Tmpl*>(tmpls + *e);
      uint8_t* const buf = buffers + s->bufIdx * bufSize;
      if (kPrefetch > 0 && end - e > kPrefetch) __builtin_prefetch(buffers + s[kPrefetch].bufIdx * bufSize, 1);
      const uint64_t ts = tsNs + ((uint64_t{rel} * 0x33333334u) >> 32);  // rel / 5 for rel < 2^30
      rel += t.wireStep;
      const uint16_t id = memOrder16(static_cast<uint16_t>(k + t.flow));
      // NB: ones' complement adds of 16-bit values as add + add-with-carry.
      uint16_t l4 = onesAdd(t.l4Base, id & t.l4IdMask);
      const uint16_t ipc = static_cast<uint16_t>(~onesAdd(t.ipBase, id));
      // NB: buffers are reused and a filter may have written into them: the whole frame is
      // rewritten (the zero payload keeps the L4 checksum a sum of the header fields).
      std::memcpy(buf + t.extOfs, t.frame + 64, 16);
      copy64(buf, t.frame);
      if (!kShort && t.len > 80) {
        const uint32_t len = t.len;
        std::memcpy(buf + 80, t.frame + 80, 48);
        if (len > kFrameCopy) std::memset(buf + kFrameCopy, 0, len - kFrameCopy);
      }
      if (kSeq) {
        const uint64_t seqNo = seqTop | k;
        put64(buf + t.len - 8, seqNo);
        const uint32_t hi = static_cast<uint32_t>(seqNo >> 32), lo = static_cast<uint32_t>(seqNo);
        uint32_t x = (hi >> 16) + (hi & 0xFFFF) + (lo >> 16) + (lo & 0xFFFF);
        x = (x & 0xFFFF) + (x >> 16);
        x = (x & 0xFFFF) + (x >> 16);
        const uint32_t swapped = ((x & 0xFF) << 8) | (x >> 8);
        // In memory order: a trailer at an odd offset adds its sum as is, else swapped.
        const uint32_t be = x ^ ((x ^ swapped) & t.oddTrailer);
        l4 = onesAdd(l4, memOrder16(static_cast<uint16_t>(be)));
      }
      uint16_t c = static_cast<uint16_t>(~l4);
      if (kSeq) c = c == 0 ? t.udpZero : c;  // without seq a UDP checksum is in the frame
      std::memcpy(buf + t.ipIdOfs, &id, 2);
      std::memcpy(buf + t.ipCsumOfs, &ipc, 2);
      std::memcpy(buf + t.l4IdOfs, &id, 2);
      std::memcpy(buf + t.l4CsumOfs, &c, 2);
      std::memcpy(reinterpret_cast<uint8_t*>(s) + 4, &t.slotWord, 8);
      s->tsNs = ts;
    }
    return rel;
  }

  /** The fill loop on per-flow frames (many (flow, length) pairs: sizes over a wide range
   * with many flows). */
  template <bool kSeq>
  void fillFlow(RingShadow& sh, GenRing& g, uint32_t first, uint32_t count, uint64_t seqTop) noexcept {
    // NB: byte stores into the frames may alias anything: everything the loop reads is a
    // local first, or the compiler reloads it from memory after every store.
    const uint32_t* sched = g.sched.data();
    const uint32_t schedLen = static_cast<uint32_t>(g.sched.size());
    const Flow* flows = flows_.data();
    ShadowSlot* slots = sh.slots.data();
    uint8_t* const buffers = bufferAt(sh.geo, 0);
    const uint32_t bufSize = sh.geo.bufSize;
    const uint32_t numSlots = sh.geo.numSlots;
    const uint64_t tsBase = tsBaseNs_;
    uint32_t pos = g.pos;
    uint64_t k = g.produced;
    uint64_t wirePs = g.wirePs;
    uint32_t i = first;
    for (uint32_t n = 0; n < count; n++, k++) {
      ShadowSlot& s = slots[i];
      const uint32_t e = sched[pos];
      if (++pos == schedLen) pos = 0;
      const uint32_t flow = e >> kLenBits;
      const uint32_t len = e & ((1u << kLenBits) - 1);
      makePacket(buffers + uint64_t{s.bufIdx} * bufSize, flows[flow], len, static_cast<uint16_t>(k + flow), kSeq, seqTop | k);
      s.len = static_cast<uint16_t>(len);
      s.origLen = len;
      s.flags = 0;
      s.tsNs = tsBase + wirePs / 1000;
      wirePs += uint64_t{len + 4 + 20} * 800;  // 0.8 ns per byte at 10 Gb/s
      if (++i == numSlots) i = 0;
    }
    g.pos = pos;
    g.produced = k;
    g.wirePs = wirePs;
  }

  /** Writes one frame of `len` bytes of flow `f` at `buf`. NB: hot path — fixed-size copies of
   * the pre-built frame, checksums from precomputed sums plus the few fields that vary, and no
   * branch on the protocol (Flow). */
  static inline void makePacket(uint8_t* buf, const Flow& f, uint32_t len, uint16_t id, bool seq, uint64_t seqNo) {
    // NB: read every field before the first store into the frame (byte stores alias it).
    const uint32_t ipSum = f.ipSum, l4Sum = f.l4Sum, l4Ofs = f.l4Ofs, l3Len = len - f.l3LenSub, l4Len = len - l4Ofs;
    const uint32_t l3LenOfs = f.l3LenOfs, ipIdOfs = f.ipIdOfs, ipCsumOfs = f.ipCsumOfs, l4LenOfs = f.l4LenOfs, l4IdOfs = f.l4IdOfs,
                   l4CsumOfs = f.l4CsumOfs, l4LenMul = f.l4LenMul, l4IdMul = f.l4IdMul, udp = f.udp;
    // NB: buffers are reused and a filter may have written into them: the whole frame is
    // rewritten (the zero payload keeps the L4 checksum a sum of the header fields).
    std::memcpy(buf, f.frame, 64);
    if (len > 64) {
      std::memcpy(buf + 64, f.frame + 64, 64);
      if (len > kFrameCopy) std::memset(buf + kFrameCopy, 0, len - kFrameCopy);
    }
    uint32_t trailer = 0;  // sum of the sequence trailer as it lies in the L4 checksum
    if (seq) {
      put64(buf + len - 8, seqNo);
      const uint32_t hi = static_cast<uint32_t>(seqNo >> 32), lo = static_cast<uint32_t>(seqNo);
      uint32_t t = (hi >> 16) + (hi & 0xFFFF) + (lo >> 16) + (lo & 0xFFFF);
      t = (t & 0xFFFF) + (t >> 16);
      t = (t & 0xFFFF) + (t >> 16);
      const uint32_t swapped = ((t & 0xFF) << 8) | (t >> 8);  // at an odd offset in the L4 data
      const uint32_t odd = 0u - ((len - 8 - l4Ofs) & 1);
      trailer = t ^ ((t ^ swapped) & odd);
    }
    put16(buf + l3LenOfs, l3Len);
    put16(buf + ipIdOfs, id);
    put16(buf + ipCsumOfs, fold(ipSum + l3Len + id));
    put16(buf + l4LenOfs, l4Len);
    put16(buf + l4IdOfs, id);
    const uint16_t c = fold(l4Sum + l4LenMul * l4Len + l4IdMul * id + trailer);
    put16(buf + l4CsumOfs, c == 0 && udp ? 0xFFFF : c);
  }

  /** Folds a sum to 16 bits, not complemented (0 only for a zero sum). */
  static uint16_t fold16(uint32_t acc) {
    acc = (acc & 0xFFFF) + (acc >> 16);
    acc = (acc & 0xFFFF) + (acc >> 16);
    return static_cast<uint16_t>(acc);
  }

  /** The pre-built frames of every (flow, length) the schedules hold and the schedules as
   * indices into them; none when there are more than kMaxTmpl pairs (then fillFlow). */
  void buildTmpls() {
    std::vector<uint32_t> entries;
    for (const GenRing& g : gens_) entries.insert(entries.end(), g.sched.begin(), g.sched.end());
    std::sort(entries.begin(), entries.end());
    entries.erase(std::unique(entries.begin(), entries.end()), entries.end());
    if (entries.empty() || entries.size() > kMaxTmpl) return;
    tmpls_.resize(entries.size());
    for (size_t t = 0; t < entries.size(); t++) {
      const uint32_t flow = entries[t] >> kLenBits, len = entries[t] & ((1u << kLenBits) - 1);
      const Flow& f = flows_[flow];
      Tmpl& m = tmpls_[t];
      std::memset(&m, 0, sizeof m);
      std::memcpy(m.frame, f.frame, kFrameCopy);
      const uint32_t l3Len = len - f.l3LenSub, l4Len = len - f.l4Ofs;
      if (f.l3LenOfs < kFrameCopy) put16(m.frame + f.l3LenOfs, l3Len);  // else the scratch (ARP)
      if (f.l4LenOfs < kFrameCopy) put16(m.frame + f.l4LenOfs, l4Len);
      ShadowSlot slot{};
      slot.len = static_cast<uint16_t>(len);
      slot.flags = 0;
      slot.origLen = len;
      std::memcpy(&m.slotWord, reinterpret_cast<const uint8_t*>(&slot) + 4, 8);
      m.wireStep = (len + 4 + 20) * 4;  // 0.8 ns per byte at 10 Gb/s
      m.len = len;
      m.flow = static_cast<uint16_t>(flow);
      m.ipBase = memOrder16(fold16(f.ipSum + l3Len));
      m.l4Base = memOrder16(fold16(f.l4Sum + f.l4LenMul * l4Len));
      m.l4IdMask = f.l4IdMul ? 0xFFFF : 0;
      m.udpZero = f.udp ? 0xFFFF : 0;
      m.ipIdOfs = f.ipIdOfs;
      m.ipCsumOfs = f.ipCsumOfs;
      m.l4IdOfs = f.l4IdOfs;
      m.l4CsumOfs = f.l4CsumOfs;
      m.oddTrailer = 0u - ((len - 8 - f.l4Ofs) & 1);
      m.extOfs = len > 64 ? 64 : 0;
      const uint16_t scratch = static_cast<uint16_t>(bufSize_ - 8);  // Flow's scratch: here just past the frame
      for (uint16_t* o : {&m.ipIdOfs, &m.ipCsumOfs, &m.l4IdOfs, &m.l4CsumOfs})
        if (*o == scratch) *o = static_cast<uint16_t>(len);
      if (f.udp && !spec_.seq) {  // no per-packet field in the L4 sum: the checksum is the frame's
        const uint16_t c = fold(f.l4Sum + f.l4LenMul * l4Len);
        put16(m.frame + f.l4CsumOfs, c == 0 ? 0xFFFF : c);
        m.l4CsumOfs = static_cast<uint16_t>(len);  // just past the frame (as UDP's id)
      }
    }
    tmplShort_ = true;
    for (const Tmpl& m : tmpls_) tmplShort_ = tmplShort_ && m.len <= 80;
    for (GenRing& g : gens_) {
      g.tsched.resize(g.sched.size());
      for (size_t e = 0; e < g.sched.size(); e++)
        g.tsched[e] = static_cast<uint32_t>(sizeof(Tmpl) * (std::lower_bound(entries.begin(), entries.end(), g.sched[e]) - entries.begin()));
    }
  }

  uint32_t pickSize(SplitMix64& rng) const {
    if (spec_.imix) {
      const uint32_t r = rng.below(12);
      return r < 7 ? 64 : r < 11 ? 594 : 1518;
    }
    return spec_.sizeMin + rng.below(spec_.sizeMax - spec_.sizeMin + 1);
  }

  /** Draws every ring's schedule from the one-ring stream, (protocol, flow, size) per packet,
   * each entry to the table of its flow's ring, in one pass. */
  void buildSchedules() {
    const uint32_t rings = static_cast<uint32_t>(gens_.size());
    // A ring's share of the stream: per flow, its protocol's weight over the protocol's flows.
    std::vector<uint32_t> want(rings, 0), flowsOn(rings, 0);
    for (const Flow& f : flows_) {
      gens_[f.ring].share += double(spec_.mix[f.proto]) / weightTotal_ / protoCount_[f.proto];
      flowsOn[f.ring]++;
    }
    uint64_t wantTotal = 0;
    uint32_t filling = 0;
    for (uint32_t r = 0; r < rings; r++) {
      if (flowsOn[r] == 0) continue;
      want[r] = std::max(kSchedMin, kSchedPerFlow * flowsOn[r]);
      gens_[r].sched.reserve(want[r]);
      wantTotal += want[r];
      filling++;
    }
    // Bounded: a ring with a tiny share keeps what it got in 4 times the draws all tables need
    // (one ring: exactly its table; the first table's worth is the per-packet stream).
    const uint64_t maxDraws = rings == 1 ? wantTotal : 4 * wantTotal;
    SplitMix64 rng{uint64_t{spec_.seed} * 0x2545F4914F6CDD1Dull + 1};
    for (uint64_t d = 0; d < maxDraws && filling > 0; d++) {
      const uint32_t pick = rng.below(weightTotal_);
      int p = 0;
      while (pick >= cumWeight_[p]) p++;
      const uint32_t flow = protoFirst_[p] + rng.below(protoCount_[p]);
      uint32_t len = pickSize(rng) - 4;
      const Flow& f = flows_[flow];
      const uint32_t minLen = f.hdrLen + (spec_.seq ? 8 : 0);
      if (len < minLen) len = minLen;
      if (len > bufSize_ - kStridePad - 16) len = bufSize_ - kStridePad - 16;  // as with the asked buffer size (the last 8 of a buffer are the scratch, Flow)
      std::vector<uint32_t>& sched = gens_[f.ring].sched;
      if (sched.size() == want[f.ring]) continue;
      sched.push_back(flow << kLenBits | len);
      if (sched.size() == want[f.ring]) filling--;
    }
    for (GenRing& g : gens_)
      if (g.sched.empty()) g.share = 0;
  }

  /** Splits `count` and `pps` between rings by their share (largest remainder, exact total). */
  void splitCount() {
    double total = 0;
    for (const GenRing& g : gens_) total += g.share;
    const uint32_t rings = static_cast<uint32_t>(gens_.size());
    for (GenRing& g : gens_) {
      g.share /= total;
      g.ppsRing = spec_.pps > 0 ? double(spec_.pps) * g.share : 0;
    }
    if (spec_.count == 0) return;
    uint64_t assigned = 0;
    std::vector<double> rest(rings);
    for (uint32_t r = 0; r < rings; r++) {
      const double exact = double(spec_.count) * gens_[r].share;
      gens_[r].quota = static_cast<uint64_t>(exact);
      if (gens_[r].quota > spec_.count) gens_[r].quota = spec_.count;
      rest[r] = exact - double(gens_[r].quota);
      assigned += gens_[r].quota;
    }
    while (assigned < spec_.count) {  // at most `rings` rounds of +1 (more only through rounding)
      uint32_t best = 0;
      for (uint32_t r = 1; r < rings; r++)
        if (gens_[r].share > 0 && (gens_[best].share <= 0 || rest[r] > rest[best])) best = r;
      gens_[best].quota++;
      rest[best] -= 1;
      assigned++;
    }
    while (assigned > spec_.count) {
      uint32_t best = 0;
      for (uint32_t r = 1; r < rings; r++)
        if (gens_[r].quota > 0 && (gens_[best].quota == 0 || rest[r] < rest[best])) best = r;
      gens_[best].quota--;
      rest[best] += 1;
      assigned--;
    }
    // A ring with a share but no packets left is done at once (quota 0 means unbounded).
    for (GenRing& g : gens_)
      if (g.quota == 0) g.sched.clear();
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
      for (uint32_t k = 0; k < protoCount_[p]; k++) buildFlow(flows_[first + k], static_cast<Proto>(p), flowRng, static_cast<uint16_t>(bufSize_ - 8));
      first += protoCount_[p];
    }
    for (Flow& f : flows_) f.ring = flowRing(f, rings());
  }

  static uint16_t pickPort(SplitMix64& rng) {
    static const uint16_t wellKnown[] = {22, 53, 80, 443};
    if (rng.below(2) == 0) return wellKnown[rng.below(4)];
    return static_cast<uint16_t>(1 + rng.below(65535));
  }

  /** The ring a flow's 5-tuple hashes to (addresses, protocol, ports or ICMP identifier). */
  static uint32_t flowRing(const Flow& f, uint32_t rings) {
    const uint8_t* h = f.frame;
    uint32_t ofs, n;
    if (f.proto == kArp) ofs = 28, n = 14;                // sender IP .. target IP
    else if (f.proto <= kIcmp4) ofs = 26, n = 8;          // IPv4 addresses
    else ofs = 22, n = 32;                                 // IPv6 addresses
    uint64_t x = 0xCBF29CE484222325ull;                    // FNV-1a
    for (uint32_t i = 0; i < n; i++) x = (x ^ h[ofs + i]) * 0x100000001B3ull;
    if (f.proto != kArp) {
      const uint8_t* l4 = h + f.l4Ofs;
      const bool icmp = f.proto == kIcmp4 || f.proto == kIcmp6;
      const uint8_t key[5] = {f.proto, icmp ? l4[4] : l4[0], icmp ? l4[5] : l4[1], icmp ? uint8_t(0) : l4[2], icmp ? uint8_t(0) : l4[3]};
      for (uint8_t b : key) x = (x ^ b) * 0x100000001B3ull;
    }
    SplitMix64 mix{x};
    return static_cast<uint32_t>(((mix.next() >> 32) * rings) >> 32);
  }

  /** Builds flow `f`'s frame (variable fields zero) and the sums of its fixed fields. */
  static void buildFlow(Flow& f, Proto proto, SplitMix64& rng, uint16_t scratch) {
    std::memset(&f, 0, sizeof f);
    f.l3LenOfs = f.ipIdOfs = f.ipCsumOfs = f.l4LenOfs = f.l4IdOfs = f.l4CsumOfs = scratch;  // fields it lacks
    f.proto = static_cast<uint8_t>(proto);
    uint8_t* h = f.frame;
    const uint64_t macs = rng.next();
    const uint8_t dstMac[6] = {0x02, 0x00, uint8_t(macs >> 8), uint8_t(macs >> 16), uint8_t(macs >> 24), uint8_t(macs >> 32)};
    const uint8_t srcMac[6] = {0x02, 0x01, uint8_t(macs >> 40), uint8_t(macs >> 48), uint8_t(macs >> 56), uint8_t(macs)};
    std::memcpy(h, proto == kArp ? (const uint8_t*)"\xff\xff\xff\xff\xff\xff" : dstMac, 6);
    std::memcpy(h + 6, srcMac, 6);
    const uint32_t src4 = 0x0A000000u | (static_cast<uint32_t>(rng.next()) & 0x00FFFFFFu);
    uint32_t dst4 = 0x0A000000u | (static_cast<uint32_t>(rng.next()) & 0x00FFFFFFu);
    if (dst4 == src4) dst4 ^= 1;
    const uint8_t l4proto = proto == kTcp4 || proto == kTcp6 ? 6 : proto == kUdp4 || proto == kUdp6 ? 17 : proto == kIcmp4 ? 1 : 58;
    const uint32_t l4HdrLen = l4proto == 6 ? 20 : 8;

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
    uint32_t l4Ofs, pseudoSum;
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
      pseudoSum = proto == kIcmp4 ? 0 : sum16(ip + 12, 8, 0) + l4proto;
      f.ipSum = sum16(ip, 20, 0);  // total length, id and checksum are still zero
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
      pseudoSum = sum16(ip + 8, 32, 0) + l4proto;
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
    f.hdrLen = static_cast<uint8_t>(l4Ofs + l4HdrLen);
    const bool v4 = proto <= kIcmp4;
    f.l3LenOfs = v4 ? 16 : 18;
    f.l3LenSub = v4 ? 14 : 54;
    if (v4) {
      f.ipIdOfs = 18;
      f.ipCsumOfs = 24;
    }
    if (l4proto == 6) {
      put16(l4 + 6, 1);  // low half of the sequence number
      f.l4IdOfs = static_cast<uint16_t>(l4Ofs + 4);
      f.l4CsumOfs = static_cast<uint16_t>(l4Ofs + 16);
      f.l4LenMul = 1;
      f.l4IdMul = 1;
    } else if (l4proto == 17) {
      f.l4LenOfs = static_cast<uint16_t>(l4Ofs + 4);
      f.l4CsumOfs = static_cast<uint16_t>(l4Ofs + 6);
      f.l4LenMul = 2;
      f.udp = 1;
    } else {
      f.l4IdOfs = static_cast<uint16_t>(l4Ofs + 6);
      f.l4CsumOfs = static_cast<uint16_t>(l4Ofs + 2);
      f.l4LenMul = l4proto == 58 ? 1 : 0;
      f.l4IdMul = 1;
    }
    f.l4Sum = pseudoSum + sum16(l4, l4HdrLen, 0);  // length, seq and checksum are still zero
  }

  GenSpec spec_;
  uint32_t bufSize_ = 2048;
  std::vector<Flow> flows_;
  std::vector<GenRing> gens_;
  std::vector<Tmpl> tmpls_;
  bool tmplShort_ = false;  // every pre-built frame is at most 80 bytes
  uint32_t cumWeight_[kProtoCount] = {};
  uint32_t protoFirst_[kProtoCount] = {};
  uint32_t protoCount_[kProtoCount] = {};
  uint32_t weightTotal_ = 1;
  uint64_t tsBaseNs_ = 0;
};

}  // namespace

std::shared_ptr<Port> openGenPort(const GenSpec& spec, const PortOptions& opts) {
  return std::make_shared<GenPort>(spec, opts);
}

}  // namespace nmwasm

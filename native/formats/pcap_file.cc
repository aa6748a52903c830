// pcap_file.cc — classic pcap and pcapng reader, nanosecond pcap writer. See pcap_file.h
// for what is accepted and refused.
#include "pcap_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace {

constexpr uint32_t kMagicMicros = 0xa1b2c3d4;
constexpr uint32_t kMagicNanos = 0xa1b23c4d;
constexpr uint32_t kBlockSHB = 0x0a0d0d0a;
constexpr uint32_t kBlockIDB = 1;
constexpr uint32_t kBlockPB = 2;   // obsolete Packet Block
constexpr uint32_t kBlockSPB = 3;
constexpr uint32_t kBlockEPB = 6;
constexpr uint32_t kByteOrderMagic = 0x1a2b3c4d;
constexpr size_t kClassicHeader = 24;
constexpr size_t kClassicRecordHeader = 16;
constexpr uint64_t kNsPerSecond = 1000000000ull;
// NB: the read buffer: one pread per 320 KiB of capture. Large enough for any record (16 +
// kMaxCaplen bytes) or pcapng packet block prefix (28 + kMaxCaplen bytes), small enough to
// stay in L2 for the second copy into the slot (2 MiB chunks measured slower per packet).
constexpr size_t kReadChunk = 320u << 10;
constexpr size_t kSllHeader = 16;
constexpr size_t kSll2Header = 20;
constexpr size_t kEtherHeader = 14;

inline bool acceptedLinkType(uint32_t t) {
  return t == kLinkTypeEthernet || t == kLinkTypeLinuxSll || t == kLinkTypeLinuxSll2;
}

// Fault kinds: what validate()/describe() report.
enum FaultKind {
  kRecordHeaderCut = 1,   // a: bytes left
  kRecordDataCut,         // a: caplen, b: bytes left
  kCaplenTooLarge,        // a: caplen
  kBlockHeaderCut,        // a: bytes left
  kBlockCut,              // a: block length, b: bytes left
  kBlockLengthBad,        // a: block length, b: block type
  kBlockTrailerBad,       // a: leading length, b: trailing length
  kByteOrderMagicBad,     // a: value
  kSectionVersionBad,     // a: major, b: minor
  kBlockOutsideSection,   // a: block type
  kBlockTooShort,         // a: block length, b: block type
  kOptionOverrun,         // a: option code
  kTsresolBad,            // a: if_tsresol byte
  kInterfaceUndefined,    // a: interface id, b: interfaces defined in the section
  kPacketOverrunsBlock,   // a: caplen, b: room in the block
  kFileChanged,           // a: size at open, b: where the file now ends (a short read)
};

inline uint16_t load16(const uint8_t* p, bool swap) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return swap ? __builtin_bswap16(v) : v;
}
inline uint32_t load32(const uint8_t* p, bool swap) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return swap ? __builtin_bswap32(v) : v;
}
inline uint64_t load64(const uint8_t* p, bool swap) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return swap ? __builtin_bswap64(v) : v;
}

// ns since epoch from whole seconds + ns, clamped to [0, UINT64_MAX].
inline uint64_t clampNs(__int128 ns) {
  if (ns < 0) return 0;
  if (ns > static_cast<__int128>(UINT64_MAX)) return UINT64_MAX;
  return static_cast<uint64_t>(ns);
}

// NB: one 128-bit division per pcapng packet; only reached for resolutions other than
// 1 ns and 1 us, which have fast paths below.
inline uint64_t ticksToNs(uint64_t ticks, const PcapReader::Interface& ifc) {
  if (ifc.offsetSeconds == 0) {
    if (ifc.unitsPerSecond == 1000000) return clampNs(static_cast<__int128>(ticks) * 1000);
    if (ifc.unitsPerSecond == kNsPerSecond) return ticks;
  }
  uint64_t secs = ticks / ifc.unitsPerSecond;
  uint64_t frac = ticks % ifc.unitsPerSecond;
  __int128 fracNs = static_cast<__int128>(frac) * kNsPerSecond / ifc.unitsPerSecond;
  return clampNs((static_cast<__int128>(secs) + ifc.offsetSeconds) * kNsPerSecond + fracNs);
}

inline uint32_t pad4(uint32_t n) { return (n + 3u) & ~3u; }

std::string errnoName(int err) { return pcapErrnoName(err); }

PcapError systemError(const std::string& path, const char* doing, int err, const char* hint) {
  return PcapError{errnoName(err), path + ": cannot " + doing + ": " + std::strerror(err) + hint, err};
}

std::string hex32(uint64_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace

std::string pcapErrnoName(int err) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  if (const char* name = strerrorname_np(err)) return name;
#endif
  return "E" + std::to_string(err);
}

const char* pcapLinkTypeName(uint32_t linkType) {
  switch (linkType) {
    case 0: return "NULL";
    case 1: return "ETHERNET";
    case 6: return "IEEE802_5";
    case 8: return "SLIP";
    case 9: return "PPP";
    case 10: return "FDDI";
    case 50: return "PPP_HDLC";
    case 51: return "PPP_ETHER";
    case 100: return "ATM_RFC1483";
    case 101: return "RAW";
    case 104: return "C_HDLC";
    case 105: return "IEEE802_11";
    case 107: return "FRELAY";
    case 108: return "LOOP";
    case 113: return "LINUX_SLL";
    case 114: return "LTALK";
    case 117: return "PFLOG";
    case 119: return "IEEE802_11_PRISM";
    case 122: return "IP_OVER_FC";
    case 123: return "SUNATM";
    case 127: return "IEEE802_11_RADIOTAP";
    case 129: return "ARCNET_LINUX";
    case 132: return "JUNIPER_ES";
    case 138: return "APPLE_IP_OVER_IEEE1394";
    case 139: return "MTP2_WITH_PHDR";
    case 140: return "MTP2";
    case 141: return "MTP3";
    case 142: return "SCCP";
    case 143: return "DOCSIS";
    case 144: return "LINUX_IRDA";
    case 163: return "IEEE802_11_AVS";
    case 164: return "JUNIPER_MONITOR";
    case 165: return "BACNET_MS_TP";
    case 166: return "PPP_PPPD";
    case 169: return "GPRS_LLC";
    case 177: return "LINUX_LAPD";
    case 178: return "JUNIPER_ETHER";
    case 179: return "JUNIPER_PPP";
    case 180: return "JUNIPER_FRELAY";
    case 181: return "JUNIPER_CHDLC";
    case 182: return "MFR";
    case 187: return "BLUETOOTH_HCI_H4";
    case 189: return "USB_LINUX";
    case 192: return "PPI";
    case 195: return "IEEE802_15_4_WITHFCS";
    case 197: return "ERF";
    case 201: return "BLUETOOTH_HCI_H4_WITH_PHDR";
    case 204: return "PPP_WITH_DIR";
    case 215: return "IEEE802_15_4_NONASK_PHY";
    case 220: return "USB_LINUX_MMAPPED";
    case 226: return "IPNET";
    case 227: return "CAN_SOCKETCAN";
    case 228: return "IPV4";
    case 229: return "IPV6";
    case 230: return "IEEE802_15_4_NOFCS";
    case 231: return "DBUS";
    case 239: return "NFLOG";
    case 240: return "NETANALYZER";
    case 241: return "NETANALYZER_TRANSPARENT";
    case 242: return "IPOIB";
    case 247: return "INFINIBAND";
    case 248: return "SCTP";
    case 249: return "USBPCAP";
    case 251: return "BLUETOOTH_LE_LL";
    case 253: return "NETLINK";
    case 254: return "BLUETOOTH_LINUX_MONITOR";
    case 256: return "BLUETOOTH_LE_LL_WITH_PHDR";
    case 258: return "PKTAP";
    case 259: return "EPON";
    case 263: return "WATTSTOPPER_DLM";
    case 271: return "VSOCK";
    case 272: return "NORDIC_BLE";
    case 274: return "ETHERNET_MPACKET";
    case 276: return "LINUX_SLL2";
    case 281: return "DSA_TAG_BRCM";
    case 282: return "DSA_TAG_BRCM_PREPEND";
    case 283: return "IEEE802_15_4_TAP";
    case 284: return "DSA_TAG_DSA";
    case 285: return "DSA_TAG_EDSA";
    default: return nullptr;
  }
}

// ---------------------------------------------------------------------------------------
// PcapReader

PcapReader::~PcapReader() {
  if (fd_ >= 0) ::close(fd_);
}

const uint8_t* PcapReader::view(uint64_t offset, size_t len) {
  if (offset >= bufStart_ && offset + len <= bufStart_ + bufLen_) return buf_.data() + (offset - bufStart_);
  if (len > buf_.size() || offset + len > size_) {  // callers check against size_ first: never taken
    fault(kFileChanged, offset, size_, offset);
    return nullptr;
  }
  // NB: one pread per kReadChunk bytes, not per packet; the chunk starts at the record asked for.
  size_t want = static_cast<size_t>(size_ - offset < buf_.size() ? size_ - offset : buf_.size());
  size_t got = 0;
  while (got < want) {
    ssize_t n = ::pread(fd_, buf_.data() + got, want - got, static_cast<off_t>(offset + got));
    if (n < 0) {
      if (errno == EINTR) continue;
      readErrno_ = errno;
      break;
    }
    if (n == 0) break;  // the file is shorter than it was at open
    got += static_cast<size_t>(n);
  }
  bufStart_ = offset;
  bufLen_ = got;
  if (got < len) {
    fault(kFileChanged, offset, size_, offset + got);
    return nullptr;
  }
  return buf_.data();
}

std::unique_ptr<PcapReader> PcapReader::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    int err = errno;
    const char* hint = err == ENOENT ? " (no such file: check the path of the pcap: port)"
                     : err == EACCES ? " (permission denied: make the file readable)" : "";
    throw systemError(path, "open capture file", err, hint);
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    throw systemError(path, "stat capture file", err, "");
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    throw PcapError{"EISDIR", path + ": is a directory, expected a pcap or pcapng file", EISDIR};
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw PcapError{"EINVAL", path + ": is not a regular file; give a pcap or pcapng file", EINVAL};
  }
  std::unique_ptr<PcapReader> reader(new PcapReader());
  // NB: read with pread into one buffer of kReadChunk bytes, never mapped: a file truncated by
  // another process while it is read gives a short read (kFileChanged), not a SIGBUS.
  reader->fd_ = fd;
  reader->dev_ = st.st_dev;
  reader->ino_ = st.st_ino;
  reader->size_ = static_cast<uint64_t>(st.st_size);
  reader->buf_.resize(kReadChunk);
  posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  reader->validate(path);
  return reader;
}

void PcapReader::validate(const std::string& path) {
  const uint64_t size = size_;
  if (size < 4) {
    throw PcapError{"EPCAP_TRUNCATED", path + ": file is " + std::to_string(size) +
                    " bytes long, too short for a pcap or pcapng header; the capture is empty or truncated", 0};
  }
  const uint8_t* head = view(0, size < kClassicHeader ? static_cast<size_t>(size) : kClassicHeader);
  if (head == nullptr) throw PcapError{readErrno_ ? errnoName(readErrno_) : "EPCAP_TRUNCATED", describe(path), readErrno_};
  uint32_t magic = load32(head, false);
  if (magic == kBlockSHB) {
    pcapng_ = true;
    firstRecord_ = 0;
  } else {
    if (magic == kMagicMicros || magic == kMagicNanos) {
      swapped_ = false;
    } else if (magic == __builtin_bswap32(kMagicMicros) || magic == __builtin_bswap32(kMagicNanos)) {
      swapped_ = true;
      magic = __builtin_bswap32(magic);
    } else {
      throw PcapError{"EPCAP_FORMAT", path + ": not a pcap or pcapng file (first 4 bytes are " +
                      hex32(load32(head, true)) + "; expected a pcap magic such as 0xa1b2c3d4 or the pcapng 0x0a0d0d0a)", 0};
    }
    if (size < kClassicHeader) {
      throw PcapError{"EPCAP_TRUNCATED", path + ": pcap header is cut short (" + std::to_string(size) +
                      " of 24 bytes); the capture is truncated", 0};
    }
    nanos_ = magic == kMagicNanos;
    uint16_t major = load16(head + 4, swapped_);
    uint16_t minor = load16(head + 6, swapped_);
    if (major != 2) {
      throw PcapError{"EPCAP_FORMAT", path + ": unsupported pcap version " + std::to_string(major) + "." +
                      std::to_string(minor) + "; expected 2.4", 0};
    }
    oldVersion_ = minor < 4;
    linkType_ = load32(head + 20, swapped_) & 0xffffu;  // upper bits: FCS length, ignored
    firstRecord_ = kClassicHeader;
  }

  // Full structural pass: count packets, collect interfaces, note the first packet of a link
  // type nmwasm cannot give as Ethernet (reported only if the structure is sound).
  indexing_ = true;
  rewind();
  uint64_t badLinkPacket = 0;
  uint32_t badLinkType = kLinkTypeEthernet;
  Record rec;
  Step s;
  while ((s = step(&rec)) == Step::kPacket) {
    if (rec.linkType == kLinkTypeLinuxSll || rec.linkType == kLinkTypeLinuxSll2) {
      if (cookedLinkType_ == 0) cookedLinkType_ = rec.linkType;
    } else if (rec.linkType != kLinkTypeEthernet && badLinkPacket == 0) {
      badLinkPacket = packetIndex_;
      badLinkType = rec.linkType;
    }
  }
  if (s == Step::kFault) throw failure(path);
  packetCount_ = packetIndex_;
  indexing_ = false;
  if (!pcapng_ && !acceptedLinkType(linkType_)) badLinkType = linkType_;
  if (badLinkType != kLinkTypeEthernet && (!pcapng_ || badLinkPacket != 0)) {
    const char* name = pcapLinkTypeName(badLinkType);
    std::string where = pcapng_ ? " (packet " + std::to_string(badLinkPacket) + ")" : "";
    throw PcapError{"ELINKTYPE", path + ": link type " + std::to_string(badLinkType) + " (" +
                    (name ? name : "unknown") + ")" + where +
                    " is not supported: nmwasm filters Ethernet frames (LINKTYPE_ETHERNET = 1; Linux cooked "
                    "captures, LINUX_SLL and LINUX_SLL2, are read as Ethernet)", 0};
  }
  rewind();
}

PcapError PcapReader::failure(const std::string& path) const {
  if (fault_.kind == kFileChanged && readErrno_ != 0) {
    return PcapError{errnoName(readErrno_), path + ": cannot read capture file at byte offset " + std::to_string(fault_.offset) +
                     ": " + std::strerror(readErrno_) + "; check the disk and the file", readErrno_};
  }
  const bool truncated = fault_.kind == kRecordHeaderCut || fault_.kind == kRecordDataCut ||
                         fault_.kind == kBlockHeaderCut || fault_.kind == kBlockCut || fault_.kind == kFileChanged;
  return PcapError{truncated ? "EPCAP_TRUNCATED" : "EPCAP_CORRUPT", describe(path), 0};
}

std::string PcapReader::describe(const std::string& path) const {
  const Fault& f = fault_;
  std::string at = " at byte offset " + std::to_string(f.offset);
  std::string pkt = "packet " + std::to_string(packetIndex_ + 1);
  std::string a = std::to_string(f.a), b = std::to_string(f.b);
  const char* truncated = "; the capture is truncated (a partly written file?): re-capture it or cut it with editcap";
  const char* corrupt = "; the capture is corrupt: re-capture it";
  switch (f.kind) {
    case kRecordHeaderCut:
      return path + ": " + pkt + " record header" + at + " is cut short (" + a + " of 16 bytes)" + truncated;
    case kRecordDataCut:
      return path + ": " + pkt + at + " runs past the end of the file (" + a + " bytes of data, " + b +
             " left)" + truncated;
    case kCaplenTooLarge:
      return path + ": " + pkt + at + " has a captured length of " + a + " bytes, more than the " +
             std::to_string(kMaxCaplen) + "-byte limit" + corrupt;
    case kBlockHeaderCut:
      return path + ": pcapng block header" + at + " is cut short (" + a + " of 12 bytes)" + truncated;
    case kBlockCut:
      return path + ": pcapng block" + at + " (near " + pkt + ") is " + a + " bytes long but only " + b +
             " bytes are left in the file" + truncated;
    case kBlockLengthBad:
      return path + ": pcapng block type " + hex32(f.b) + at + " has length " + a +
             ", expected a multiple of 4 of at least 12" + corrupt;
    case kBlockTrailerBad:
      return path + ": pcapng block" + at + " has length " + a + " but its trailing length field says " + b + corrupt;
    case kByteOrderMagicBad:
      return path + ": pcapng section header" + at + " has byte-order magic " + hex32(f.a) +
             ", expected 0x1a2b3c4d" + corrupt;
    case kSectionVersionBad:
      return path + ": pcapng section header" + at + " has version " + a + "." + b +
             ", expected 1.0; this reader supports pcapng 1.x only";
    case kBlockOutsideSection:
      return path + ": pcapng block type " + hex32(f.a) + at + " comes before any section header block" + corrupt;
    case kBlockTooShort:
      return path + ": pcapng block type " + hex32(f.b) + at + " is " + a +
             " bytes long, too short for its fixed fields" + corrupt;
    case kOptionOverrun:
      return path + ": pcapng interface description block" + at + " has option " + a +
             " running past the end of the block" + corrupt;
    case kTsresolBad:
      return path + ": pcapng interface description block" + at + " has if_tsresol " + hex32(f.a) +
             ", beyond 10^-19 or 2^-63 seconds" + corrupt;
    case kInterfaceUndefined:
      return path + ": " + pkt + at + " refers to interface " + a + " but its section defines " + b +
             " interface(s)" + corrupt;
    case kPacketOverrunsBlock:
      return path + ": " + pkt + at + " has " + a + " bytes of data but its block holds only " + b + corrupt;
    case kFileChanged:
      return path + ": the file changed while it was read: it was " + a + " bytes long when opened, now it ends at byte " +
             b + " (" + pkt + at + "); do not truncate or rewrite a capture while nmwasm reads it (copy it first)";
    default:
      return path + ": malformed capture" + at + corrupt;
  }
}

PcapReader::Step PcapReader::fault(int kind, uint64_t offset, uint64_t a, uint64_t b) {
  fault_ = Fault{kind, offset, a, b};
  return Step::kFault;
}

void PcapReader::rewind() {
  pos_ = firstRecord_;
  packetIndex_ = 0;
  idbSeen_ = 0;
  sectionBase_ = 0;
  inSection_ = false;
  if (indexing_) interfaces_.clear();
}

PcapReader::Step PcapReader::step(Record* out) {
  return pcapng_ ? stepPcapng(out) : stepClassic(out);
}

// NB: view() may refill the read buffer and so invalidates every pointer it returned
// before; each step reads its fixed fields into locals and takes the packet data last.
PcapReader::Step PcapReader::stepClassic(Record* out) {
  const uint64_t left = size_ - pos_;
  if (left == 0) return Step::kEnd;
  if (left < kClassicRecordHeader) return fault(kRecordHeaderCut, pos_, left);
  const uint8_t* h = view(pos_, kClassicRecordHeader);
  if (h == nullptr) return Step::kFault;
  uint32_t secs = load32(h, swapped_);
  uint32_t frac = load32(h + 4, swapped_);
  uint32_t caplen = load32(h + 8, swapped_);
  uint32_t origlen = load32(h + 12, swapped_);
  // Versions before 2.4 could store the two lengths the other way round (as Wireshark).
  if (oldVersion_ && caplen > origlen) std::swap(caplen, origlen);
  if (caplen > kMaxCaplen) return fault(kCaplenTooLarge, pos_, caplen);
  if (left - kClassicRecordHeader < caplen) return fault(kRecordDataCut, pos_, caplen, left - kClassicRecordHeader);
  const uint8_t* data = view(pos_ + kClassicRecordHeader, caplen);
  if (data == nullptr) return Step::kFault;
  out->data = data;
  out->caplen = caplen;
  out->origlen = origlen;
  out->tsNs = static_cast<uint64_t>(secs) * kNsPerSecond + static_cast<uint64_t>(frac) * (nanos_ ? 1 : 1000);
  out->linkType = linkType_;
  pos_ += kClassicRecordHeader + caplen;
  ++packetIndex_;
  return Step::kPacket;
}

PcapReader::Step PcapReader::stepPcapng(Record* out) {
  for (;;) {
    const uint64_t left = size_ - pos_;
    if (left == 0) return Step::kEnd;
    if (left < 12) return fault(kBlockHeaderCut, pos_, left);
    const uint8_t* blk = view(pos_, 12);
    if (blk == nullptr) return Step::kFault;
    uint32_t type = load32(blk, swapped_);
    if (load32(blk, false) == kBlockSHB) {
      type = kBlockSHB;
      uint32_t bom = load32(blk + 8, false);
      if (bom == kByteOrderMagic) swapped_ = false;
      else if (bom == __builtin_bswap32(kByteOrderMagic)) swapped_ = true;
      else return fault(kByteOrderMagicBad, pos_, bom);
    } else if (!inSection_) {
      return fault(kBlockOutsideSection, pos_, type);
    }
    uint32_t length = load32(blk + 4, swapped_);
    if (length < 12 || length % 4 != 0) return fault(kBlockLengthBad, pos_, length, type);
    if (length > left) return fault(kBlockCut, pos_, length, left);
    const uint8_t* tail = view(pos_ + length - 4, 4);
    if (tail == nullptr) return Step::kFault;
    uint32_t trailer = load32(tail, swapped_);
    if (trailer != length) return fault(kBlockTrailerBad, pos_, length, trailer);
    const uint64_t body = pos_ + 8;  // file offset of the block body
    const uint32_t bodyLen = length - 12;
    const uint64_t blockOffset = pos_;
    pos_ += length;

    switch (type) {
      case kBlockSHB: {
        if (bodyLen < 16) return fault(kBlockTooShort, blockOffset, length, type);
        const uint8_t* f = view(body, 16);
        if (f == nullptr) return Step::kFault;
        uint16_t major = load16(f + 4, swapped_);
        uint16_t minor = load16(f + 6, swapped_);
        if (major != 1) return fault(kSectionVersionBad, blockOffset, major, minor);
        inSection_ = true;
        sectionBase_ = idbSeen_;
        continue;
      }
      case kBlockIDB: {
        if (bodyLen < 8) return fault(kBlockTooShort, blockOffset, length, type);
        if (indexing_) {
          const uint8_t* f = view(body, 8);
          if (f == nullptr) return Step::kFault;
          Interface ifc{load16(f, swapped_), load32(f + 4, swapped_), 1000000, 0};
          uint64_t opt = body + 8;
          const uint64_t end = body + bodyLen;
          while (end - opt >= 4) {
            const uint8_t* oh = view(opt, 4);
            if (oh == nullptr) return Step::kFault;
            uint16_t code = load16(oh, swapped_);
            uint16_t olen = load16(oh + 2, swapped_);
            if (code == 0) break;  // opt_endofopt
            if (pad4(olen) > end - opt - 4) return fault(kOptionOverrun, blockOffset, code);
            if (code == 9 && olen >= 1) {  // if_tsresol
              const uint8_t* value = view(opt + 4, 1);
              if (value == nullptr) return Step::kFault;
              uint8_t r = value[0];
              uint32_t exp = r & 0x7f;
              if (r & 0x80) {
                if (exp > 63) return fault(kTsresolBad, blockOffset, r);
                ifc.unitsPerSecond = 1ull << exp;
              } else {
                if (exp > 19) return fault(kTsresolBad, blockOffset, r);
                uint64_t ups = 1;
                for (uint32_t i = 0; i < exp; ++i) ups *= 10;
                ifc.unitsPerSecond = ups;
              }
            } else if (code == 14 && olen >= 8) {  // if_tsoffset
              const uint8_t* value = view(opt + 4, 8);
              if (value == nullptr) return Step::kFault;
              ifc.offsetSeconds = static_cast<int64_t>(load64(value, swapped_));
            }
            opt += 4 + pad4(olen);
          }
          interfaces_.push_back(ifc);
        }
        ++idbSeen_;
        continue;
      }
      case kBlockEPB:
      case kBlockPB: {
        if (bodyLen < 20) return fault(kBlockTooShort, blockOffset, length, type);
        const uint8_t* f = view(body, 20);
        if (f == nullptr) return Step::kFault;
        uint32_t ifId = type == kBlockEPB ? load32(f, swapped_) : load16(f, swapped_);
        size_t defined = idbSeen_ - sectionBase_;
        if (ifId >= defined) return fault(kInterfaceUndefined, blockOffset, ifId, defined);
        const Interface& ifc = interfaces_[sectionBase_ + ifId];
        uint64_t ticks = (static_cast<uint64_t>(load32(f + 4, swapped_)) << 32) | load32(f + 8, swapped_);
        uint32_t caplen = load32(f + 12, swapped_);
        uint32_t origlen = load32(f + 16, swapped_);
        if (caplen > kMaxCaplen) return fault(kCaplenTooLarge, blockOffset, caplen);
        if (caplen > bodyLen - 20) return fault(kPacketOverrunsBlock, blockOffset, caplen, bodyLen - 20);
        const uint8_t* data = view(body + 20, caplen);
        if (data == nullptr) return Step::kFault;
        out->data = data;
        out->caplen = caplen;
        out->origlen = origlen;
        out->tsNs = ticksToNs(ticks, ifc);
        out->linkType = ifc.linkType;
        ++packetIndex_;
        return Step::kPacket;
      }
      case kBlockSPB: {
        if (bodyLen < 4) return fault(kBlockTooShort, blockOffset, length, type);
        size_t defined = idbSeen_ - sectionBase_;
        if (defined == 0) return fault(kInterfaceUndefined, blockOffset, 0, 0);
        const Interface& ifc = interfaces_[sectionBase_];
        const uint8_t* f = view(body, 4);
        if (f == nullptr) return Step::kFault;
        uint32_t origlen = load32(f, swapped_);
        uint32_t caplen = origlen;
        if (ifc.snaplen != 0 && caplen > ifc.snaplen) caplen = ifc.snaplen;
        if (caplen > bodyLen - 4) caplen = bodyLen - 4;
        if (caplen > kMaxCaplen) return fault(kCaplenTooLarge, blockOffset, caplen);
        const uint8_t* data = view(body + 4, caplen);
        if (data == nullptr) return Step::kFault;
        out->data = data;
        out->caplen = caplen;
        out->origlen = origlen;
        out->tsNs = 0;  // Simple Packet Blocks carry no timestamp
        out->linkType = ifc.linkType;
        ++packetIndex_;
        return Step::kPacket;
      }
      default:
        continue;  // any other block: skipped by its length
    }
  }
}

bool PcapReader::next(uint8_t* dst, uint32_t cap, uint32_t* caplen, uint32_t* origlen, uint64_t* ts_ns) {
  Record rec;
  Step s = step(&rec);
  if (s != Step::kPacket) {
    if (s == Step::kFault) failed_ = true;  // the file changed since open (validated then)
    return false;
  }
  *ts_ns = rec.tsNs;
  if (rec.linkType == kLinkTypeLinuxSll || rec.linkType == kLinkTypeLinuxSll2) {
    *caplen = cookedToEthernet(rec, dst, cap, origlen);
    return true;
  }
  uint32_t n = rec.caplen < cap ? rec.caplen : cap;
  std::memcpy(dst, rec.data, n);
  *caplen = n;
  *origlen = rec.origlen;
  return true;
}

uint32_t PcapReader::cookedToEthernet(const Record& rec, uint8_t* dst, uint32_t cap, uint32_t* origlen) {
  const bool v2 = rec.linkType == kLinkTypeLinuxSll2;
  const uint32_t hdr = v2 ? kSll2Header : kSllHeader;
  // The cooked header as captured (fields beyond caplen read as zero).
  uint8_t h[kSll2Header] = {0};
  std::memcpy(h, rec.data, rec.caplen < hdr ? rec.caplen : hdr);
  // SLL:  pkttype(2) hatype(2) halen(2) addr(8) protocol(2)
  // SLL2: protocol(2) reserved(2) ifindex(4) hatype(2) pkttype(1) halen(1) addr(8)
  const uint16_t pktType = v2 ? h[10] : static_cast<uint16_t>(h[0] << 8 | h[1]);
  const uint16_t addrLen = v2 ? h[11] : static_cast<uint16_t>(h[4] << 8 | h[5]);
  const uint8_t* addr = v2 ? h + 12 : h + 6;
  const uint8_t* proto = v2 ? h : h + 14;
  uint8_t eth[kEtherHeader] = {0};
  if (pktType == 1) std::memset(eth, 0xff, 6);  // LINUX_SLL_BROADCAST: the destination is known
  if (addrLen == 6) std::memcpy(eth + 6, addr, 6);  // the sender's MAC
  eth[12] = proto[0];
  eth[13] = proto[1];
  const uint32_t payload = rec.caplen > hdr ? rec.caplen - hdr : 0;
  const uint32_t total = kEtherHeader + payload;
  uint32_t n = total < cap ? total : cap;
  std::memcpy(dst, eth, n < kEtherHeader ? n : kEtherHeader);
  if (n > kEtherHeader) std::memcpy(dst + kEtherHeader, rec.data + hdr, n - kEtherHeader);
  const uint32_t orig = rec.origlen > hdr ? rec.origlen - hdr + kEtherHeader : kEtherHeader;
  *origlen = orig > total ? orig : total;
  return n;
}

// pcap_file.h — reading and writing capture files for the `pcap:` input port and the
// `pcap-out` output port.
//
// PcapReader reads classic pcap (all four magics: microsecond and nanosecond resolution,
// both byte orders) and pcapng (any number of sections in either byte order, Interface
// Description Blocks with if_tsresol / if_tsoffset, Enhanced, Simple and obsolete Packet
// Blocks; every other block is skipped by its length). open() checks the WHOLE file before
// it returns, so next() meets a malformed record only when the file changed since (then
// next() ends and failed() is true). The file is read with pread into one 320 KiB buffer,
// never memory-mapped: a capture truncated while it is read cannot raise SIGBUS.
// nmwasm filters Ethernet frames: Ethernet (LINKTYPE_ETHERNET = 1) is read as is; Linux
// cooked captures (LINUX_SLL = 113, LINUX_SLL2 = 276, `tcpdump -i any`) are read as Ethernet
// frames whose 14-byte header is synthesized from the cooked header: destination
// ff:ff:ff:ff:ff:ff for a broadcast packet (packet type 1), else zero; source = the cooked
// header's link-layer address when it is 6 bytes long, else zero; Ethertype = its protocol
// field, copied as is. caplen and origlen shrink by 2 (SLL) or 6 (SLL2); a record shorter
// than its cooked header gives a 14-byte frame with the missing fields zero.
//
// What open() accepts, and why (tshark is liberal about content, strict about structure;
// so are we):
//  - caplen > snaplen and caplen > origlen are accepted (tcpdump writes such files);
//    caplen above 262144 bytes (kMaxCaplen, Wireshark's limit too) is EPCAP_CORRUPT.
//  - A record or block that runs past the end of the file, including a truncated final
//    record, is EPCAP_TRUNCATED: a partly written capture is refused, not half-played.
//  - pcapng block lengths below the minimum, not a multiple of 4, or not repeated
//    identically at the block's end, malformed IDB options, an unknown if_tsresol, and a
//    packet referring to an interface its section did not define are EPCAP_CORRUPT.
//  - Classic pcap link type: the low 16 bits; the FCS-length bits above them are ignored.
//    pcapng: a file is refused (ELINKTYPE) if any packet refers to an interface of another
//    link type than these three.
//    Structural errors are reported before ELINKTYPE.
//  - Timestamps become ns since the epoch (uint64), clamped at 0 for times before 1970.
//    Simple Packet Blocks carry no timestamp: ts_ns = 0; their caplen is min(original length,
//    interface 0's snaplen, the block's room). Custom Blocks (0xBAD, 0x40000BAD), which tshark
//    lists as records, are not packets and are skipped like every other non-packet block.
//  - Classic pcap 2.0-2.3: caplen and origlen are swapped when caplen > origlen (as Wireshark).
//  - Classic pcap fraction fields are not range-checked: a microsecond field >= 10^6 adds
//    exactly (Wireshark overflows there; see rx_serviceid_oobr.pcap in the corpus test).
//
// PcapWriter (pcap_writer.cc) writes nanosecond classic pcap (magic 0xa1b23c4d, snaplen
// 262144, Ethernet); see its comment for what it does with the path it is given.
//
// Error messages are one line, start with the file path, and say what to do.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

// Thrown by PcapReader::open, PcapWriter::create and PcapWriter::commit. `code` is an errno
// name (ENOENT, EACCES, ...) or one of EPCAP_TRUNCATED, EPCAP_FORMAT, EPCAP_CORRUPT,
// ELINKTYPE; `err` is the errno value (0 for format errors).
struct PcapError {
  std::string code;
  std::string message;
  int err;
  std::string syscall = "";  // the failed system call when there is one ("write", "open")
};

// "ENOSPC" for ENOSPC, ... ("E<number>" when the C library has no name for it).
std::string pcapErrnoName(int err);

constexpr uint32_t kLinkTypeEthernet = 1;
constexpr uint32_t kLinkTypeLinuxSll = 113;
constexpr uint32_t kLinkTypeLinuxSll2 = 276;
constexpr uint32_t kMaxCaplen = 262144;

// Name of a common LINKTYPE_ value ("ETHERNET", "IEEE802_11_RADIOTAP"), or nullptr.
const char* pcapLinkTypeName(uint32_t linkType);

class PcapReader {
 public:
  // Opens `path` and validates every record; throws PcapError on any problem.
  static std::unique_ptr<PcapReader> open(const std::string& path);
  ~PcapReader();
  PcapReader(const PcapReader&) = delete;
  PcapReader& operator=(const PcapReader&) = delete;

  // Number of packets in the file (counted by open).
  uint64_t packetCount() const { return packetCount_; }
  // The link type of the file (classic pcap) or of its first interface (pcapng).
  uint32_t linkType() const { return linkType_; }
  // kLinkTypeLinuxSll or kLinkTypeLinuxSll2 when packets of that link type were found (their
  // frames get a synthesized Ethernet header), else 0.
  uint32_t cookedLinkType() const { return cookedLinkType_; }
  // Identity of the file read (st_dev, st_ino at open).
  uint64_t device() const { return dev_; }
  uint64_t inode() const { return ino_; }
  // True for pcapng, false for classic pcap.
  bool isPcapng() const { return pcapng_; }

  // Copies the next packet (as an Ethernet frame): min(caplen, cap) bytes into dst; *caplen =
  // bytes copied, *origlen = wire length, *ts_ns = ns since epoch. Returns false at the end
  // of the file, or when the file changed since open (shorter, unreadable, rewritten): then
  // failed() is true and failure() says what happened. Allocates nothing, throws nothing.
  bool next(uint8_t* dst, uint32_t cap, uint32_t* caplen, uint32_t* origlen, uint64_t* ts_ns);
  // True once next() stopped because the file changed under the reader.
  bool failed() const { return failed_; }
  // The one-line error for the last fault (EPCAP_TRUNCATED for a file that got shorter,
  // EPCAP_CORRUPT, or the errno of a failed read), starting with `path`. Allocates.
  PcapError failure(const std::string& path) const;
  // Back to the first packet.
  void rewind();

  // Internal parsing state; public only so the parser helpers in pcap_file.cc can name them.
  struct Interface {
    uint32_t linkType;
    uint32_t snaplen;
    uint64_t unitsPerSecond;
    int64_t offsetSeconds;
  };
  struct Record {
    const uint8_t* data;
    uint32_t caplen;
    uint32_t origlen;
    uint64_t tsNs;
    uint32_t linkType;
  };
  struct Fault {
    int kind;           // one of the Fault kinds in pcap_file.cc
    uint64_t offset;    // byte offset of the record/block
    uint64_t a, b;      // kind-specific numbers
  };
  enum class Step { kPacket, kEnd, kFault };

 private:
  PcapReader() = default;
  Step step(Record* out);
  Step stepClassic(Record* out);
  Step stepPcapng(Record* out);
  Step fault(int kind, uint64_t offset, uint64_t a = 0, uint64_t b = 0);
  void validate(const std::string& path);
  std::string describe(const std::string& path) const;
  // `len` bytes at file offset `offset` (offset + len <= size_, len <= the buffer), read into
  // the buffer if needed; nullptr (and a kFileChanged fault) when the file is now shorter or
  // a read fails. Invalidates every pointer returned before.
  const uint8_t* view(uint64_t offset, size_t len);
  uint32_t cookedToEthernet(const Record& rec, uint8_t* dst, uint32_t cap, uint32_t* origlen);

  int fd_ = -1;
  uint64_t dev_ = 0, ino_ = 0;
  uint64_t size_ = 0;               // the file's size at open; nothing after it is read
  std::vector<uint8_t> buf_;        // read buffer: file bytes [bufStart_, bufStart_ + bufLen_)
  uint64_t bufStart_ = 0;
  size_t bufLen_ = 0;
  int readErrno_ = 0;               // errno of a failed pread
  bool failed_ = false;
  uint32_t cookedLinkType_ = 0;
  bool pcapng_ = false;
  bool swapped_ = false;            // classic: whole file; pcapng: current section
  bool nanos_ = false;              // classic only
  bool oldVersion_ = false;         // classic 2.0-2.3 (caplen/origlen may be swapped)
  uint32_t linkType_ = kLinkTypeEthernet;
  uint64_t packetCount_ = 0;

  uint64_t pos_ = 0;                // next record/block to parse
  uint64_t firstRecord_ = 0;
  uint64_t packetIndex_ = 0;        // packets parsed so far (1-based number of the last)
  bool indexing_ = false;           // true during open(): IDBs are appended to interfaces_
  std::vector<Interface> interfaces_;  // every IDB of the file, in file order
  size_t idbSeen_ = 0;              // IDBs passed so far (iteration cursor into interfaces_)
  size_t sectionBase_ = 0;          // index in interfaces_ of the current section's interface 0
  bool inSection_ = false;
  Fault fault_{};
};

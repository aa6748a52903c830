// pcap: (input) and pcap-out: (output) ports, wrapping PcapReader/PcapWriter
// of pcap_file.h.
//
// pcap: one ring; each packet is copied into its slot's buffer. A packet longer
// than the buffer (nr_buf_size, 2048) is truncated to the buffer: slot len =
// the copied bytes, the original length is kept (written back as origlen by
// pcap-out when the filter leaves len unchanged). The timestamp is the capture's.
// A capture that changes while it is read ends the source; the ring's last sync then
// throws its error (EPCAP_TRUNCATED, ...).
// pcap-out: writes every transmitted packet with its original timestamp, flushed once
// per batch; the file appears under its name only at closePort (commit); abortPort or a
// port dropped without closing removes the temporary file. A write error (ENOSPC) keeps
// what was written (pcap_writer.h) and is thrown by the next sync of every ring feeding it.
// No pcap-out may write the file a pcap: input of the same process reads (same inode:
// the same name, a hard link, a symbolic link), or the target of another pcap-out.
#include <algorithm>
#include <mutex>
#include <vector>

#include "core/errors.h"
#include "pcap_file.h"
#include "pcap_writer.h"
#include "ports/port.h"

namespace nmwasm {

namespace {

/** Rethrows a pcap_file error as a NativeError of `port`. PcapError messages start with
 * "<path>: "; the port name already contains the path, so that prefix is dropped to name
 * the file once. `advice` (what to do) is appended unless empty. */
NativeError asNative(const PcapError& e, const std::string& port, const std::string& path, const std::string& advice);

[[noreturn]] void rethrow(const PcapError& e, const std::string& port, const std::string& path, const std::string& advice) {
  throw asNative(e, port, path, advice);
}

NativeError asNative(const PcapError& e, const std::string& port, const std::string& path, const std::string& advice) {
  std::string msg = e.message;
  const std::string prefix = path + ": ";
  if (msg.compare(0, prefix.size(), prefix) == 0) msg.erase(0, prefix.size());
  if (!advice.empty()) msg += "; " + advice;
  return NativeError(e.code, port, e.syscall, e.err, msg);
}

/** The pcap files open in this process: inputs by inode, outputs by inode (when their target
 * existed) and resolved path. Guarded by filesMu. */
struct OpenFile {
  const void* owner;
  bool output;
  uint64_t dev, ino;  // 0, 0 for an output whose target did not exist
  std::string path;   // outputs: the resolved target
  std::string port;
};
std::mutex filesMu;
std::vector<OpenFile> openFiles;

/** Registers `f`, or throws ESAMEFILE when it is the file of an open port of the other kind
 * (or a second output to one file). */
void claimFile(const OpenFile& f) {
  std::lock_guard<std::mutex> lock(filesMu);
  for (const OpenFile& o : openFiles) {
    const bool sameInode = f.dev != 0 && o.dev == f.dev && o.ino == f.ino;
    const bool clash = f.output ? (o.output ? sameInode || o.path == f.path : sameInode) : (o.output && sameInode);
    if (!clash) continue;
    if (f.output && o.output)
      throw NativeError("ESAMEFILE", f.port, "", 0, "is also the file of the output " + o.port + "; give each output its own file");
    throw NativeError("ESAMEFILE", f.port, "", 0,
                      std::string(f.output ? "is the file read by the input " : "is the file written by the output ") + o.port +
                          " (the same file, a hard link or a symbolic link to it); an output never overwrites its input: write to another file");
  }
  openFiles.push_back(f);
}

void releaseFile(const void* owner) {
  std::lock_guard<std::mutex> lock(filesMu);
  openFiles.erase(std::remove_if(openFiles.begin(), openFiles.end(), [owner](const OpenFile& f) { return f.owner == owner; }),
                  openFiles.end());
}

/** What to do about a capture file that cannot be read (pcap_file adds its own hint to
 * ENOENT/EACCES, so those get none here). */
std::string inputAdvice(const std::string& code) {
  if (code == "ENOENT" || code == "EACCES") return "";
  if (code == "ELINKTYPE") return "give a capture of Ethernet frames (capinfos shows the encapsulation)";
  if (code.compare(0, 6, "EPCAP_") == 0 || code == "EISDIR" || code == "EINVAL")
    return "give an Ethernet pcap or pcapng file (check it with capinfos)";
  return "check the file and its permissions";
}

/** What to do about an output file that cannot be written. */
std::string outputAdvice(const std::string& code) {
  if (code == "ENOENT") return "create the directory or choose another path";
  if (code == "ENXIO") return "";  // the FIFO's reader: said by pcap_writer
  if (code == "EACCES" || code == "EPERM" || code == "EROFS") return "choose a writable directory";
  if (code == "ENOSPC" || code == "EDQUOT") return "free space or choose another path";
  return "choose another path";
}

class PcapInPort : public Port {
 public:
  PcapInPort(const std::string& name, const std::string& path, const PortOptions& opts) : Port(name, "pcap"), path_(path) {
    try {
      reader_ = PcapReader::open(path);
    } catch (const PcapError& e) {
      rethrow(e, name, path, inputAdvice(e.code));
    }
    claimFile(OpenFile{this, false, reader_->device(), reader_->inode(), path, name});
    expected_ = reader_->packetCount();
    try {
      setupRings(1, opts.numSlots, opts.bufSize);
    } catch (...) {
      releaseFile(this);
      throw;
    }
  }
  ~PcapInPort() override { releaseFile(this); }

  std::vector<std::string> notices() const override {
    const uint32_t cooked = reader_->cookedLinkType();
    if (cooked == 0) return {};
    return {name() + ": a Linux cooked capture (" + pcapLinkTypeName(cooked) +
            "): the filter sees Ethernet frames whose header is made from the cooked header (source MAC as captured, "
            "destination zero or broadcast)"};
  }

  void throwIfFailed() override {
    if (reader_->failed()) throw asNative(reader_->failure(path_), name(), path_, "");
  }

  uint64_t expected() const override { return expected_; }

  uint32_t rxsync(uint32_t ring, uint32_t first, uint32_t count, bool* exhausted) noexcept override {
    RingShadow& sh = shadow(ring);
    uint32_t i = first, got = 0;
    try {
      for (; got < count; got++) {
        ShadowSlot& s = sh.slots[i];
        uint32_t caplen = 0, origlen = 0;
        uint64_t ts = 0;
        if (!reader_->next(bufferAt(sh.geo, s.bufIdx), sh.geo.bufSize, &caplen, &origlen, &ts)) {
          *exhausted = true;
          break;
        }
        s.len = static_cast<uint16_t>(caplen);
        s.origLen = origlen > caplen ? origlen : caplen;
        s.flags = 0;
        s.tsNs = ts;
        if (++i == sh.geo.numSlots) i = 0;
      }
    } catch (...) {
      *exhausted = true;  // next() throws nothing; a file that changed under it ends it (failed())
    }
    if (reader_->failed()) *exhausted = true;
    return got;
  }

 private:
  std::string path_;
  std::unique_ptr<PcapReader> reader_;
  uint64_t expected_ = 0;
};

class PcapOutPort : public Port {
 public:
  PcapOutPort(const std::string& name, const std::string& path) : Port(name, "pcap-out"), path_(path) {
    try {
      writer_ = PcapWriter::create(path);
    } catch (const PcapError& e) {
      rethrow(e, name, path, outputAdvice(e.code));
    }
    try {
      claimFile(OpenFile{this, true, writer_->targetDevice(), writer_->targetInode(), writer_->targetPath(), name});
    } catch (...) {
      writer_->abort();
      throw;
    }
  }
  ~PcapOutPort() override {
    releaseFile(this);
    try {
      if (writer_) writer_->abort();  // dropped without closePort: remove the temporary file
    } catch (...) {
    }
  }

  bool canTransmit() const override { return true; }

  std::vector<std::string> notices() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return writer_ ? writer_->notices() : std::vector<std::string>{};
  }

  /** Writes the batch and flushes it: returns the packets now on file (fewer after a write
   * error, the rest count as output drops). */
  uint32_t transmit(const TxPacket* pkts, uint32_t count) noexcept override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!writer_ || writer_->failed()) return 0;
    const uint64_t before = writer_->packetsWritten();
    for (uint32_t k = 0; k < count; k++) writer_->write(pkts[k].data, pkts[k].len, pkts[k].origLen, pkts[k].tsNs);
    writer_->flush();
    return static_cast<uint32_t>(writer_->packetsWritten() - before);
  }

  void throwIfFailed() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (writer_ && writer_->failed()) throw asNative(writer_->failure(), name(), path_, "");
  }

 protected:
  void onClose() override {
    std::lock_guard<std::mutex> lock(mu_);
    releaseFile(this);
    try {
      writer_->commit();
      writer_.reset();
    } catch (const PcapError& e) {
      const bool kept = writer_->failed();
      writer_->abort();
      writer_.reset();
      rethrow(e, name(), path_, kept ? "" : "the output file was not written: " + outputAdvice(e.code));
    }
  }
  void onAbort() noexcept override {
    std::lock_guard<std::mutex> lock(mu_);
    releaseFile(this);
    if (writer_) writer_->abort();
    writer_.reset();
  }

 private:
  std::string path_;
  mutable std::mutex mu_;
  std::unique_ptr<PcapWriter> writer_;
};

}  // namespace

std::shared_ptr<Port> openPcapPort(const std::string& name, const std::string& path, const PortOptions& opts) {
  return std::make_shared<PcapInPort>(name, path, opts);
}

std::shared_ptr<Port> openPcapOutPort(const std::string& name, const std::string& path) {
  return std::make_shared<PcapOutPort>(name, path);
}

}  // namespace nmwasm

// pcap: (input) and pcap-out: (output) ports, wrapping PcapReader/PcapWriter
// of pcap_file.h.
//
// pcap: one ring; each packet is copied into its slot's buffer. A packet longer
// than the buffer (nr_buf_size, 2048) is truncated to the buffer: slot len =
// the copied bytes, the original length is kept (written back as origlen by
// pcap-out when the filter leaves len unchanged). The timestamp is the capture's.
// pcap-out: writes every transmitted packet with its original timestamp; the
// file appears under its name only at closePort (commit); abortPort or a port
// dropped without closing removes the temporary file.
#include <mutex>

#include "errors.h"
#include "pcap_file.h"
#include "port.h"

namespace nmwasm {

namespace {

/** Rethrows a pcap_file error as a NativeError of `port`. PcapError messages start with
 * "<path>: "; the port name already contains the path, so that prefix is dropped to name
 * the file once. `advice` (what to do) is appended unless empty. */
[[noreturn]] void rethrow(const PcapError& e, const std::string& port, const std::string& path, const std::string& advice) {
  std::string msg = e.message;
  const std::string prefix = path + ": ";
  if (msg.compare(0, prefix.size(), prefix) == 0) msg.erase(0, prefix.size());
  if (!advice.empty()) msg += "; " + advice;
  throw NativeError(e.code, port, "", e.err, msg);
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
  if (code == "EACCES" || code == "EPERM" || code == "EROFS") return "choose a writable directory";
  if (code == "ENOSPC" || code == "EDQUOT") return "free space or choose another path";
  return "choose another path";
}

class PcapInPort : public Port {
 public:
  PcapInPort(const std::string& name, const std::string& path, const PortOptions& opts) : Port(name, "pcap") {
    try {
      reader_ = PcapReader::open(path);
    } catch (const PcapError& e) {
      rethrow(e, name, path, inputAdvice(e.code));
    }
    expected_ = reader_->packetCount();
    setupRings(1, opts.numSlots, opts.bufSize);
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
      // NB: the file was validated whole at open; a read error now (file changed
      // under us) ends the source rather than failing the ring.
      *exhausted = true;
    }
    return got;
  }

 private:
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
  }
  ~PcapOutPort() override {
    try {
      if (writer_) writer_->abort();  // dropped without closePort: remove the temporary file
    } catch (...) {
    }
  }

  bool canTransmit() const override { return true; }

  uint32_t transmit(const TxPacket* pkts, uint32_t count) noexcept override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!writer_ || failed_) return 0;
    uint32_t k = 0;
    try {
      for (; k < count; k++) writer_->write(pkts[k].data, pkts[k].len, pkts[k].origLen, pkts[k].tsNs);
    } catch (const PcapError& e) {
      failed_ = true;
      error_ = e;  // reported by closePort
    } catch (...) {
      failed_ = true;
      error_ = PcapError{"EIO", "writing the output file failed", 0};
    }
    return k;
  }

 protected:
  void onClose() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (failed_) {
      writer_->abort();
      writer_.reset();
      rethrow(error_, name(), path_, "the output file was not written: " + outputAdvice(error_.code));
    }
    try {
      writer_->commit();
      writer_.reset();
    } catch (const PcapError& e) {
      writer_->abort();
      writer_.reset();
      rethrow(e, name(), path_, "the output file was not written: " + outputAdvice(e.code));
    }
  }
  void onAbort() noexcept override {
    std::lock_guard<std::mutex> lock(mu_);
    if (writer_) writer_->abort();
    writer_.reset();
  }

 private:
  std::string path_;
  std::mutex mu_;
  std::unique_ptr<PcapWriter> writer_;
  bool failed_ = false;
  PcapError error_;
};

}  // namespace

std::shared_ptr<Port> openPcapPort(const std::string& name, const std::string& path, const PortOptions& opts) {
  return std::make_shared<PcapInPort>(name, path, opts);
}

std::shared_ptr<Port> openPcapOutPort(const std::string& name, const std::string& path) {
  return std::make_shared<PcapOutPort>(name, path);
}

}  // namespace nmwasm

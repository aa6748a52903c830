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

[[noreturn]] void rethrow(const PcapError& e, const std::string& port, const std::string& advice) {
  throw NativeError(e.code, port, "", e.err, e.message + (advice.empty() ? "" : "; " + advice));
}

class PcapInPort : public Port {
 public:
  PcapInPort(const std::string& name, const std::string& path, const PortOptions& opts) : Port(name, "pcap") {
    try {
      reader_ = PcapReader::open(path);
    } catch (const PcapError& e) {
      rethrow(e, name, "give an Ethernet pcap or pcapng file (check it with capinfos)");
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
  PcapOutPort(const std::string& name, const std::string& path) : Port(name, "pcap-out") {
    try {
      writer_ = PcapWriter::create(path);
    } catch (const PcapError& e) {
      rethrow(e, name, "check that the directory exists and is writable");
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
      rethrow(error_, name(), "the output file was not written; free space or choose another path");
    }
    try {
      writer_->commit();
      writer_.reset();
    } catch (const PcapError& e) {
      writer_->abort();
      writer_.reset();
      rethrow(e, name(), "the output file was not written; free space or choose another path");
    }
  }
  void onAbort() noexcept override {
    std::lock_guard<std::mutex> lock(mu_);
    if (writer_) writer_->abort();
    writer_.reset();
  }

 private:
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

// pcap_writer.h — the writer of the pcap: output port (`--out pcap:FILE`): nanosecond
// classic pcap (magic 0xa1b23c4d, version 2.4, snaplen 262144, LINKTYPE_ETHERNET).
//
// What create() does with the path it is given, before any packet is written:
//  - nothing there, or a regular file: the capture is written to a temp file
//    `.NAME.nmwasm-PID.tmp` (`-PID-K` for a second writer of the same process) beside it and
//    renamed onto NAME by commit(); an existing file is replaced only then.
//  - a symbolic link: followed; when it leads to a regular file, that file is the target
//    (the temp file is made beside it, the link itself stays). A link that leads nowhere is
//    refused (ENOENT).
//  - a FIFO or a character device (/dev/null, a pipe behind /dev/stdout): written through,
//    no temp file, nothing renamed. A FIFO without a reader (ENXIO) and a terminal (EINVAL)
//    are refused.
//  - a directory (EISDIR), a block device or a socket (EINVAL): refused.
// Leftovers: temp files `.NAME.nmwasm-PID[-K].tmp` beside the target whose PID no longer runs
// (a run killed by SIGKILL, a crash, a power loss) are removed by create() and listed in
// notices().
// Writing: write() appends a record to a buffer, flush() writes the buffer (the port flushes
// once per batch, so the packets counted as written are on file). A failed write (ENOSPC,
// EDQUOT, EIO, EPIPE): a regular file is cut back to its last whole record and committed as
// it is (renamed into place), so it stays a valid capture of the packets written before;
// failed() is then true, failure() says what happened, and nothing more is written.
//
// Error messages are one line, start with the path, and say what to do.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "pcap_file.h"

class PcapWriter {
 public:
  // Checks `path` (see above), removes dead leftovers, creates the temp file (or opens the
  // FIFO/device) and writes the pcap header; throws PcapError.
  static std::unique_ptr<PcapWriter> create(const std::string& path);
  ~PcapWriter();
  PcapWriter(const PcapWriter&) = delete;
  PcapWriter& operator=(const PcapWriter&) = delete;

  // Appends one record (caplen is clamped to kMaxCaplen; a time after 2106-02-07 06:28:15,
  // beyond 32-bit seconds, is written as the last instant classic pcap can hold); flushes
  // first when the buffer is full. Allocates nothing, throws nothing; after a failed write
  // it does nothing.
  void write(const uint8_t* data, uint32_t caplen, uint32_t origlen, uint64_t ts_ns);
  // Writes the buffered records. Returns false once a write failed (see above). Allocates
  // nothing, throws nothing.
  bool flush();
  // Flushes, closes and renames the temp file onto the target (write-through: closes);
  // throws PcapError on I/O failure (the temp file is then removed; after a failed write,
  // what was written is already in place).
  void commit();
  // Removes the temp file (write-through: closes). Also done by the destructor if neither
  // commit nor abort ran. Does nothing after a failed write (the capture is kept).
  void abort();

  // Records on file (written by flush, never more than are really there).
  uint64_t packetsWritten() const { return packets_; }
  const std::string& tempPath() const { return tempPath_; }
  // The file written (a symbolic link resolved) and, when it existed at create(), its identity.
  const std::string& targetPath() const { return target_; }
  bool targetExisted() const { return targetExisted_; }
  uint64_t targetDevice() const { return dev_; }
  uint64_t targetInode() const { return ino_; }
  // True for a FIFO or character device (no temp file).
  bool writesThrough() const { return through_; }
  // One-line notes for the start-up messages (leftover temp files removed).
  const std::vector<std::string>& notices() const { return notices_; }
  // True once a write failed; failure() is then the error to report (allocates).
  bool failed() const { return error_ != 0; }
  PcapError failure() const;

 private:
  PcapWriter() = default;
  void keepWhatWasWritten();

  std::string path_;                // as given
  std::string target_;              // the file replaced (links resolved) or written through
  std::string tempPath_;
  bool through_ = false;
  bool targetExisted_ = false;
  uint64_t dev_ = 0, ino_ = 0;
  int fd_ = -1;
  std::vector<uint8_t> buffer_;
  size_t used_ = 0;
  uint64_t buffered_ = 0;           // records in buffer_
  uint64_t fileBytes_ = 0;          // bytes on file (whole records only)
  uint64_t packets_ = 0;            // records on file
  int error_ = 0;                   // errno of the first failed write
  bool kept_ = false;               // after error_: the partial capture is in place
  int keepErrno_ = 0;               // after error_: why it could not be kept
  bool finished_ = false;
  std::vector<std::string> notices_;
};

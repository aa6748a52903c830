// pcap_writer.cc — the nanosecond classic pcap writer (see pcap_writer.h for what it does
// with its path, leftovers and write errors).
#include "pcap_writer.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace {

constexpr uint32_t kMagicNanos = 0xa1b23c4d;
constexpr size_t kHeader = 24;
constexpr size_t kRecordHeader = 16;
constexpr uint64_t kNsPerSecond = 1000000000ull;
// NB: flushed once per batch by the port; a batch bigger than this is written in pieces.
constexpr size_t kWriteBuffer = 1 << 20;

void put32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }
void put16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }

PcapError sysError(const std::string& path, const char* doing, int err, const std::string& hint, const char* syscall) {
  return PcapError{pcapErrnoName(err), path + ": cannot " + doing + ": " + std::strerror(err) + hint, err, syscall};
}

/** Writes all of [p, p+n) to fd; returns the bytes written (< n after an error, in *err). */
size_t writeAll(int fd, const uint8_t* p, size_t n, int* err) {
  size_t off = 0;
  while (off < n) {
    ssize_t w = ::write(fd, p + off, n - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      *err = errno;
      break;
    }
    if (w == 0) {
      *err = EIO;
      break;
    }
    off += static_cast<size_t>(w);
  }
  return off;
}

/** PID in a leftover name ".BASE.nmwasm-PID.tmp" or ".BASE.nmwasm-PID-K.tmp", or 0. */
long leftoverPid(const std::string& name, const std::string& prefix) {
  const std::string suffix = ".tmp";
  if (name.size() <= prefix.size() + suffix.size() || name.compare(0, prefix.size(), prefix) != 0 ||
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
    return 0;
  const std::string mid = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  size_t dash = mid.find('-');
  const std::string pid = mid.substr(0, dash);
  if (pid.empty() || pid.size() > 9 || pid.find_first_not_of("0123456789") != std::string::npos) return 0;
  if (dash != std::string::npos) {
    const std::string k = mid.substr(dash + 1);
    if (k.empty() || k.size() > 9 || k.find_first_not_of("0123456789") != std::string::npos) return 0;
  }
  return std::strtol(pid.c_str(), nullptr, 10);
}

/** Removes the leftover temp files of `base` in `dir` whose process is gone; their names. */
std::vector<std::string> removeLeftovers(const std::string& dir, const std::string& base) {
  std::vector<std::string> removed;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return removed;
  const std::string prefix = "." + base + ".nmwasm-";
  const long self = static_cast<long>(getpid());
  while (struct dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    long pid = leftoverPid(name, prefix);
    if (pid <= 0 || pid == self) continue;
    if (kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;  // still running (or not ours to judge)
    if (unlinkat(dirfd(d), name.c_str(), 0) == 0) removed.push_back(name);
  }
  closedir(d);
  return removed;
}

std::string kind(mode_t mode) {
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

}  // namespace

std::unique_ptr<PcapWriter> PcapWriter::create(const std::string& path) {
  std::unique_ptr<PcapWriter> w(new PcapWriter());
  w->path_ = path;
  w->target_ = path;
  if (path.empty() || path.back() == '/')
    throw PcapError{"EISDIR", path + ": is a directory path; give a file name for the output pcap", EISDIR};

  struct stat lst, st;
  if (lstat(path.c_str(), &lst) == 0) {
    // stat follows every link (also /proc/self/fd/N, which realpath cannot resolve for a pipe).
    if (stat(path.c_str(), &st) != 0) {
      int err = errno;
      throw sysError(path, "write output pcap", err,
                     err == ENOENT ? " (a symbolic link that leads to no file: give the real path)" : "", "stat");
    }
    w->targetExisted_ = true;
    w->dev_ = st.st_dev;
    w->ino_ = st.st_ino;
    if (S_ISDIR(st.st_mode))
      throw PcapError{"EISDIR", path + ": is a directory; give a file name for the output pcap (such as DIR/out.pcap)", EISDIR};
    if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)) {
      // Written through: O_NONBLOCK so that a FIFO without a reader is refused now instead of
      // blocking the start; blocking again for the writes (a slow reader slows the run).
      w->through_ = true;
      w->fd_ = ::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
      if (w->fd_ < 0) {
        int err = errno;
        w->finished_ = true;
        throw sysError(path, "open output", err,
                       err == ENXIO ? " (a FIFO with no reader: start the program that reads it first)" : "", "open");
      }
      if (isatty(w->fd_)) {
        w->finished_ = true;
        ::close(w->fd_);
        throw PcapError{"EINVAL", path + ": is a terminal; pcap output is binary: give a file, a FIFO or /dev/null", EINVAL};
      }
      fcntl(w->fd_, F_SETFL, fcntl(w->fd_, F_GETFL) & ~O_NONBLOCK);
    } else if (!S_ISREG(st.st_mode)) {
      throw PcapError{"EINVAL", path + ": is " + kind(st.st_mode) +
                                    "; an output pcap goes to a regular file, a FIFO or a character device such as /dev/null: choose another path",
                      EINVAL};
    } else if (S_ISLNK(lst.st_mode)) {
      char* real = realpath(path.c_str(), nullptr);
      if (real == nullptr) throw sysError(path, "resolve the symbolic link of the output pcap", errno, "", "realpath");
      w->target_ = real;
      std::free(real);
    }
  } else if (errno != ENOENT) {
    int err = errno;
    throw sysError(path, "check the output path", err, err == EACCES ? " (make the directory searchable)" : "", "lstat");
  }

  if (!w->through_) {
    const std::string& t = w->target_;
    size_t slash = t.rfind('/');
    std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : t.substr(0, slash);
    std::string base = slash == std::string::npos ? t : t.substr(slash + 1);
    std::vector<std::string> removed = removeLeftovers(dir, base);
    if (!removed.empty()) {
      w->notices_.push_back(path + ": removed " + std::to_string(removed.size()) + " temp file(s) left beside it by runs that " +
                            "ended without committing (killed or crashed): " + removed.front() + (removed.size() > 1 ? ", ..." : ""));
    }
    // Temp name beside the target so that rename() is atomic; O_EXCL guards against clashes.
    const std::string stem = (slash == std::string::npos ? "" : t.substr(0, slash + 1)) + "." + base + ".nmwasm-" +
                             std::to_string(getpid());
    for (int k = 1;; ++k) {
      w->tempPath_ = stem + (k == 1 ? "" : "-" + std::to_string(k)) + ".tmp";
      w->fd_ = ::open(w->tempPath_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      if (w->fd_ >= 0) break;
      if (errno != EEXIST || k > 100) {
        int err = errno;
        w->finished_ = true;
        throw sysError(path, "create temp file for output pcap", err,
                       err == ENOENT ? " (does the directory exist?)" : err == EACCES ? " (make the directory writable)" : "", "open");
      }
    }
  }

  uint8_t h[kHeader];
  put32(h, kMagicNanos);
  put16(h + 4, 2);
  put16(h + 6, 4);
  put32(h + 8, 0);   // thiszone
  put32(h + 12, 0);  // sigfigs
  put32(h + 16, kMaxCaplen);
  put32(h + 20, kLinkTypeEthernet);
  int err = 0;
  if (writeAll(w->fd_, h, kHeader, &err) != kHeader) {
    w->abort();
    throw sysError(path, "write output pcap", err, "", "write");
  }
  w->fileBytes_ = kHeader;
  w->buffer_.resize(kWriteBuffer);
  return w;
}

PcapWriter::~PcapWriter() {
  if (!finished_) abort();
}

bool PcapWriter::flush() {
  if (error_ != 0 || finished_) return error_ == 0;
  if (used_ == 0) return true;
  int err = 0;
  size_t off = writeAll(fd_, buffer_.data(), used_, &err);
  if (err == 0) {
    fileBytes_ += used_;
    packets_ += buffered_;
    used_ = 0;
    buffered_ = 0;
    return true;
  }
  // Count the whole records that made it; the file is cut back to them below.
  size_t good = 0;
  while (good + kRecordHeader <= used_) {
    uint32_t caplen;
    std::memcpy(&caplen, buffer_.data() + good + 8, 4);
    if (good + kRecordHeader + caplen > off) break;
    good += kRecordHeader + caplen;
    ++packets_;
  }
  fileBytes_ += good;
  used_ = 0;
  buffered_ = 0;
  error_ = err;
  keepWhatWasWritten();
  return false;
}

void PcapWriter::keepWhatWasWritten() {
  finished_ = true;
  if (through_) {
    ::close(fd_);
    fd_ = -1;
    return;
  }
  int err = 0;
  if (ftruncate(fd_, static_cast<off_t>(fileBytes_)) != 0) err = errno;
  if (::close(fd_) != 0 && err == 0) err = errno;
  fd_ = -1;
  if (err == 0 && ::rename(tempPath_.c_str(), target_.c_str()) != 0) err = errno;
  if (err != 0) {
    ::unlink(tempPath_.c_str());
    keepErrno_ = err;
  } else {
    kept_ = true;
  }
}

PcapError PcapWriter::failure() const {
  std::string msg = path_ + ": cannot write output pcap: " + std::strerror(error_) + " after " + std::to_string(packets_) +
                    " packets";
  if (through_)
    msg += error_ == EPIPE ? " (the reader went away)" : "";
  else if (kept_)
    msg += "; the " + std::to_string(packets_) + " packets written are kept" + (target_ != path_ ? " in " + target_ : "") +
           " as a valid capture";
  else
    msg += std::string("; nothing was kept (") + std::strerror(keepErrno_) + ")";
  if (error_ == ENOSPC || error_ == EDQUOT) msg += "; free space or choose another path";
  return PcapError{pcapErrnoName(error_), msg, error_, "write"};
}

void PcapWriter::write(const uint8_t* data, uint32_t caplen, uint32_t origlen, uint64_t ts_ns) {
  if (finished_ || error_ != 0) return;
  if (caplen > kMaxCaplen) caplen = kMaxCaplen;
  if (buffer_.size() - used_ < kRecordHeader + caplen && !flush()) return;
  uint8_t* p = buffer_.data() + used_;
  uint64_t secs = ts_ns / kNsPerSecond;
  uint32_t nanos = static_cast<uint32_t>(ts_ns % kNsPerSecond);
  if (secs > UINT32_MAX) {  // after 2106-02-07: the last instant classic pcap can hold
    secs = UINT32_MAX;
    nanos = kNsPerSecond - 1;
  }
  put32(p, static_cast<uint32_t>(secs));
  put32(p + 4, nanos);
  put32(p + 8, caplen);
  put32(p + 12, origlen);
  std::memcpy(p + kRecordHeader, data, caplen);
  used_ += kRecordHeader + caplen;
  ++buffered_;
}

void PcapWriter::commit() {
  if (error_ != 0) throw failure();
  if (finished_) return;
  flush();
  if (error_ != 0) throw failure();
  finished_ = true;
  int err = 0;
  if (::close(fd_) != 0) err = errno;
  fd_ = -1;
  if (through_) {
    if (err != 0) throw sysError(path_, "write output", err, "", "close");
    return;
  }
  const char* syscall = "close";
  if (err == 0 && ::rename(tempPath_.c_str(), target_.c_str()) != 0) {
    err = errno;
    syscall = "rename";
  }
  if (err != 0) {
    ::unlink(tempPath_.c_str());
    throw sysError(path_, "write output pcap", err, err == ENOSPC ? " (the disk is full; free space and run again)" : "",
                   syscall);
  }
}

void PcapWriter::abort() {
  if (finished_) return;
  finished_ = true;
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!through_) ::unlink(tempPath_.c_str());
}

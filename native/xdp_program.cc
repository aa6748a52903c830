// nmwasm's XDP program: build, load, attach by BPF link, stale cleanup, re-injection
// (see xdp_program.h).
#include "xdp_program.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include "errors.h"

namespace nmwasm {

namespace {

constexpr const char* kNamePrefix = "nmwasm_";
constexpr int32_t kXdpPass = 2;

/** A tiny BPF assembler: enough for the redirect program, with forward labels. */
class BpfAsm {
 public:
  void ldx(int size, int dst, int src, int16_t off) { emit(BPF_LDX | size | BPF_MEM, dst, src, off, 0); }
  void movReg(int dst, int src) { emit(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0); }
  void movImm(int dst, int32_t imm) { emit(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm); }
  void addImm(int dst, int32_t imm) { emit(BPF_ALU64 | BPF_ADD | BPF_K, dst, 0, 0, imm); }
  void jgtReg(int dst, int src, int label) { jump(BPF_JMP | BPF_JGT | BPF_X, dst, src, 0, label); }
  void jeqImm(int dst, int32_t imm, int label) { jump(BPF_JMP | BPF_JEQ | BPF_K, dst, 0, imm, label); }
  void ja(int label) { jump(BPF_JMP | BPF_JA, 0, 0, 0, label); }
  void ldMapFd(int dst, int fd) {
    emit(BPF_LD | BPF_DW | BPF_IMM, dst, BPF_PSEUDO_MAP_FD, 0, fd);
    emit(0, 0, 0, 0, 0);
  }
  void call(int32_t helper) { emit(BPF_JMP | BPF_CALL, 0, 0, 0, helper); }
  void exit() { emit(BPF_JMP | BPF_EXIT, 0, 0, 0, 0); }
  void label(int id) { labels_[id] = static_cast<int>(insns_.size()); }

  /** The program with every jump resolved. */
  std::vector<bpf_insn> finish() {
    for (auto& [at, id] : fixups_) insns_[at].off = static_cast<int16_t>(labels_.at(id) - at - 1);
    return insns_;
  }

 private:
  void emit(uint8_t code, int dst, int src, int16_t off, int32_t imm) {
    bpf_insn i{};
    i.code = code;
    i.dst_reg = static_cast<uint8_t>(dst);
    i.src_reg = static_cast<uint8_t>(src);
    i.off = off;
    i.imm = imm;
    insns_.push_back(i);
  }
  void jump(uint8_t code, int dst, int src, int32_t imm, int label) {
    fixups_.emplace_back(static_cast<int>(insns_.size()), label);
    emit(code, dst, src, 0, imm);
  }
  std::vector<bpf_insn> insns_;
  std::map<int, int> labels_;
  std::vector<std::pair<int, int>> fixups_;
};

/** ARP/ICMP/ICMPv6 -> XDP_PASS (when `kernelClasses`); the rest -> bpf_redirect_map(xsks,
 * rx_queue_index, XDP_PASS). */
std::vector<bpf_insn> redirectProgram(int mapFd, bool kernelClasses) {
  enum { kRedirect, kPass, kIpv4, kIpv6 };
  BpfAsm a;
  if (!kernelClasses) {
    // A bridge: every frame of a queue with a socket goes to it.
    a.ldx(BPF_W, 2, 1, offsetof(xdp_md, rx_queue_index));
    a.ldMapFd(1, mapFd);
    a.movImm(3, kXdpPass);
    a.call(BPF_FUNC_redirect_map);
    a.exit();
    return a.finish();
  }
  // NB: byte order: the ethertype is loaded as a little-endian u16 (0x0806 reads 0x0608).
  a.movReg(6, 1);
  a.ldx(BPF_W, 2, 1, offsetof(xdp_md, data));
  a.ldx(BPF_W, 3, 1, offsetof(xdp_md, data_end));
  a.movReg(4, 2);
  a.addImm(4, 14);
  a.jgtReg(4, 3, kRedirect);
  a.ldx(BPF_H, 5, 2, 12);
  a.jeqImm(5, 0x0608, kPass);  // ARP
  a.jeqImm(5, 0x0008, kIpv4);
  a.jeqImm(5, 0xdd86, kIpv6);
  a.ja(kRedirect);
  a.label(kIpv4);
  a.movReg(4, 2);
  a.addImm(4, 34);
  a.jgtReg(4, 3, kRedirect);
  a.ldx(BPF_B, 5, 2, 23);  // IPv4 protocol
  a.jeqImm(5, 1, kPass);   // ICMP
  a.ja(kRedirect);
  a.label(kIpv6);
  a.movReg(4, 2);
  a.addImm(4, 54);
  a.jgtReg(4, 3, kRedirect);
  a.ldx(BPF_B, 5, 2, 20);  // IPv6 next header
  a.jeqImm(5, 58, kPass);  // ICMPv6 (neighbour discovery included)
  a.label(kRedirect);
  a.ldx(BPF_W, 2, 6, offsetof(xdp_md, rx_queue_index));
  a.ldMapFd(1, mapFd);
  a.movImm(3, kXdpPass);  // flags: the action when the queue has no socket
  a.call(BPF_FUNC_redirect_map);
  a.exit();
  a.label(kPass);
  a.movImm(0, kXdpPass);
  a.exit();
  return a.finish();
}

int loadProgram(const std::string& port, const char* name, const std::vector<bpf_insn>& insns) {
  char log[4096] = "";
  bpf_prog_load_opts opts{};
  opts.sz = sizeof opts;
  opts.expected_attach_type = BPF_XDP;
  opts.log_buf = log;
  opts.log_size = sizeof log;
  opts.log_level = 1;
  int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, name, "GPL", insns.data(), insns.size(), &opts);
  if (fd < 0) {
    const int err = errno;
    throwSyscallError(port, "bpf", err, std::string("loading the XDP program") + (log[0] ? " (verifier: " + std::string(log).substr(0, 300) + ")" : ""),
                      "run as root (CAP_BPF and CAP_NET_ADMIN are needed) or use packet:IF");
  }
  return fd;
}

std::string progName(int progId, int* fdOut) {
  int fd = bpf_prog_get_fd_by_id(progId);
  if (fd < 0) return "";
  bpf_prog_info info{};
  uint32_t len = sizeof info;
  std::string name;
  if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0) name.assign(info.name, strnlen(info.name, sizeof info.name));
  if (fdOut) *fdOut = fd;
  else close(fd);
  return name;
}

uint32_t modeFlags(uint8_t attachMode) {
  switch (attachMode) {
    case XDP_ATTACHED_DRV: return XDP_FLAGS_DRV_MODE;
    case XDP_ATTACHED_SKB: return XDP_FLAGS_SKB_MODE;
    case XDP_ATTACHED_HW: return XDP_FLAGS_HW_MODE;
    default: return 0;
  }
}

/** Detaches a stale nmwasm program of a dead process; refuses any other program. */
void cleanStale(const std::string& port, const std::string& ifname, int ifindex) {
  bpf_xdp_query_opts q{};
  q.sz = sizeof q;
  if (bpf_xdp_query(ifindex, 0, &q) != 0 || q.prog_id == 0) return;
  const std::string name = progName(static_cast<int>(q.prog_id), nullptr);
  const std::string id = std::to_string(q.prog_id);
  if (name.rfind(kNamePrefix, 0) == 0) {
    const long pid = std::strtol(name.c_str() + std::strlen(kNamePrefix), nullptr, 10);
    const bool alive = pid > 0 && (kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM);
    if (alive && pid != getpid())
      throw NativeError("EBUSY", port, "", EBUSY,
                        "interface " + ifname + " is in use by nmwasm process " + std::to_string(pid) + " (XDP program id " + id + "): stop that process first");
    if (bpf_xdp_detach(ifindex, modeFlags(q.attach_mode), nullptr) != 0)
      throwSyscallError(port, "bpf_xdp_detach", errno, "detaching the stale nmwasm XDP program (id " + id + ") of process " + std::to_string(pid) + " from " + ifname,
                        "detach it by hand: ip link set dev " + ifname + " xdp off");
    return;
  }
  throw NativeError("EBUSY", port, "", EBUSY,
                    "interface " + ifname + " already has XDP program '" + name + "' (id " + id + ") attached: detach it (ip link set dev " + ifname +
                        " xdp off, or xdp-loader unload " + ifname + " --all) or use packet:" + ifname);
}

/** Creates the BPF link; returns its fd, or -1 with errno. */
int attachLink(int progFd, int ifindex, uint32_t flags) {
  bpf_link_create_opts opts{};
  opts.sz = sizeof opts;
  opts.flags = flags;
  return bpf_link_create(progFd, ifindex, BPF_XDP, &opts);
}

struct Registry {
  std::mutex mu;
  std::map<std::string, std::weak_ptr<XdpInterface>> byIfname;
};
Registry& registry() {
  static Registry* r = new Registry();  // NB: leaked on purpose, see port_registry.cc
  return *r;
}

}  // namespace

XdpInterface::~XdpInterface() {
  // Closing the link detaches the program (the kernel also does it at process exit).
  for (int fd : {linkFd_, progFd_, passFd_, mapFd_})
    if (fd >= 0) close(fd);
}

void XdpInterface::bindQueue(const std::string& port, uint32_t queue, int xskFd) {
  const uint32_t key = queue;
  const uint32_t value = static_cast<uint32_t>(xskFd);
  if (bpf_map_update_elem(mapFd_, &key, &value, BPF_ANY) != 0)
    throwSyscallError(port, "bpf_map_update_elem", errno, "binding the AF_XDP socket of queue " + std::to_string(queue) + " of " + ifname_ + " in the XSKMAP",
                      "report this with the output of ip -d link show " + ifname_);
}

bool XdpInterface::reinject(uint32_t queue, const uint8_t* data, uint32_t len) const noexcept {
  xdp_md ctx{};
  ctx.data_end = len;
  ctx.ingress_ifindex = static_cast<uint32_t>(ifindex_);
  ctx.rx_queue_index = queue;
  bpf_test_run_opts opts{};
  opts.sz = sizeof opts;
  opts.data_in = data;
  opts.data_size_in = len;
  opts.ctx_in = &ctx;
  opts.ctx_size_in = sizeof ctx;
  opts.flags = BPF_F_TEST_XDP_LIVE_FRAMES;
  opts.repeat = 1;
  return bpf_prog_test_run_opts(passFd_, &opts) == 0;
}

std::shared_ptr<XdpInterface> acquireXdpInterface(const std::string& port, const std::string& ifname, uint32_t queues,
                                                  XdpAttachMode mode, bool kernelClasses) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  if (auto existing = r.byIfname[ifname].lock()) {
    if ((mode == XdpAttachMode::Native && !existing->native_) || (mode == XdpAttachMode::Skb && existing->native_))
      throw NativeError("EBUSY", port, "", EBUSY,
                        "interface " + ifname + " already carries nmwasm's XDP program in " + (existing->native_ ? "native" : "skb") +
                            " mode for another port: use the same @native/@skb on every port of " + ifname);
    if (existing->kernelClasses_ != kernelClasses)
      throw NativeError("EBUSY", port, "", EBUSY,
                        "interface " + ifname + " already carries nmwasm's XDP program for another port that " +
                            (existing->kernelClasses_ ? "leaves ARP/ICMP to the kernel" : "takes every frame (a bridge)") +
                            ": bridge (--to) every input of " + ifname + " or none");
    return existing;
  }
  const int ifindex = static_cast<int>(if_nametoindex(ifname.c_str()));
  if (ifindex == 0) throwSyscallError(port, "if_nametoindex", errno, "looking up interface " + ifname, "check the name with ip link show");
  cleanStale(port, ifname, ifindex);

  std::shared_ptr<XdpInterface> x(new XdpInterface());
  x->ifname_ = ifname;
  x->ifindex_ = ifindex;
  x->queues_ = queues;
  x->mapFd_ = bpf_map_create(BPF_MAP_TYPE_XSKMAP, "nmwasm_xsks", 4, 4, queues, nullptr);
  if (x->mapFd_ < 0)
    throwSyscallError(port, "bpf_map_create", errno, "creating the XSKMAP for " + ifname, "run as root (CAP_BPF, CAP_NET_ADMIN) or use packet:" + ifname);
  const std::string name = kNamePrefix + std::to_string(getpid());
  x->kernelClasses_ = kernelClasses;
  x->progFd_ = loadProgram(port, name.c_str(), redirectProgram(x->mapFd_, kernelClasses));
  x->passFd_ = loadProgram(port, "nmwasm_host", {bpf_insn{BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, kXdpPass}, bpf_insn{BPF_JMP | BPF_EXIT, 0, 0, 0, 0}});

  int err = 0;
  if (mode != XdpAttachMode::Skb) {
    x->linkFd_ = attachLink(x->progFd_, ifindex, XDP_FLAGS_DRV_MODE);
    err = errno;
    x->native_ = x->linkFd_ >= 0;
  }
  if (x->linkFd_ < 0 && mode != XdpAttachMode::Native) {
    x->linkFd_ = attachLink(x->progFd_, ifindex, XDP_FLAGS_SKB_MODE);
    err = errno;
  }
  if (x->linkFd_ < 0) {
    const std::string how = mode == XdpAttachMode::Native ? "in native (driver) mode" : mode == XdpAttachMode::Skb ? "in skb (generic) mode" : "in native or skb mode";
    const std::string advice = err == EBUSY ? "another XDP program is attached: detach it (ip link set dev " + ifname + " xdp off)"
                               : mode == XdpAttachMode::Native ? "the driver may lack native XDP: drop @native (or use @skb)"
                                                               : "run as root, check ip -d link show " + ifname + ", or use packet:" + ifname;
    throwSyscallError(port, "bpf_link_create", err, "attaching the XDP program to " + ifname + " " + how, advice);
  }
  r.byIfname[ifname] = x;
  return x;
}

}  // namespace nmwasm

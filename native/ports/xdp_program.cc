// nmwasm's XDP program: build, load, attach by BPF link, stale cleanup, re-injection
// (see xdp_program.h).
#include "ports/xdp_program.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include "core/errors.h"

namespace nmwasm {

namespace {

/** Runs `prog` once per frame, `frames` times, over `data` as live frames received on
 * (ifindex, queue) (BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES): an XDP_PASS hands each
 * to the stack. One system call; true when the kernel ran them. */
bool runLive(int prog, int ifindex, uint32_t queue, const void* data, uint32_t len, uint32_t frames) noexcept {
  xdp_md ctx{};
  ctx.data_end = len;
  ctx.ingress_ifindex = static_cast<uint32_t>(ifindex);
  ctx.rx_queue_index = queue;
  bpf_test_run_opts opts{};
  opts.sz = sizeof opts;
  opts.data_in = data;
  opts.data_size_in = len;
  opts.ctx_in = &ctx;
  opts.ctx_size_in = sizeof ctx;
  opts.flags = BPF_F_TEST_XDP_LIVE_FRAMES;
  opts.repeat = frames;
  if (frames > 1) opts.batch_size = frames;
  return bpf_prog_test_run_opts(prog, &opts) == 0;
}

constexpr const char* kNamePrefix = "nmwasm_";
constexpr int32_t kXdpPass = 2;

/** A tiny BPF assembler: enough for the redirect program, with forward labels. */
class BpfAsm {
 public:
  void ldx(int size, int dst, int src, int16_t off) { emit(BPF_LDX | size | BPF_MEM, dst, src, off, 0); }
  void movReg(int dst, int src) { emit(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0); }
  void movImm(int dst, int32_t imm) { emit(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm); }
  void addImm(int dst, int32_t imm) { emit(BPF_ALU64 | BPF_ADD | BPF_K, dst, 0, 0, imm); }
  void stx(int size, int dst, int src, int16_t off) { emit(BPF_STX | size | BPF_MEM, dst, src, off, 0); }
  void st(int size, int dst, int16_t off, int32_t imm) { emit(BPF_ST | size | BPF_MEM, dst, 0, off, imm); }
  void subImm(int dst, int32_t imm) { emit(BPF_ALU64 | BPF_SUB | BPF_K, dst, 0, 0, imm); }
  void lshImm(int dst, int32_t imm) { emit(BPF_ALU64 | BPF_LSH | BPF_K, dst, 0, 0, imm); }
  void orImm(int dst, int32_t imm) { emit(BPF_ALU64 | BPF_OR | BPF_K, dst, 0, 0, imm); }
  void andImm(int dst, int32_t imm) { emit(BPF_ALU64 | BPF_AND | BPF_K, dst, 0, 0, imm); }
  void addReg(int dst, int src) { emit(BPF_ALU64 | BPF_ADD | BPF_X, dst, src, 0, 0); }
  void jgtReg(int dst, int src, int label) { jump(BPF_JMP | BPF_JGT | BPF_X, dst, src, 0, label); }
  void jneReg(int dst, int src, int label) { jump(BPF_JMP | BPF_JNE | BPF_X, dst, src, 0, label); }
  void jneImm(int dst, int32_t imm, int label) { jump(BPF_JMP | BPF_JNE | BPF_K, dst, 0, imm, label); }
  void jgtImm(int dst, int32_t imm, int label) { jump(BPF_JMP | BPF_JGT | BPF_K, dst, 0, imm, label); }
  void jgeImm(int dst, int32_t imm, int label) { jump(BPF_JMP | BPF_JGE | BPF_K, dst, 0, imm, label); }
  void jleReg(int dst, int src, int label) { jump(BPF_JMP | BPF_JLE | BPF_X, dst, src, 0, label); }
  void ldImm64(int dst, uint64_t v) {
    emit(BPF_LD | BPF_DW | BPF_IMM, dst, 0, 0, static_cast<int32_t>(static_cast<uint32_t>(v)));
    emit(0, 0, 0, 0, static_cast<int32_t>(static_cast<uint32_t>(v >> 32)));
  }
  void jltImm(int dst, int32_t imm, int label) { jump(BPF_JMP | BPF_JLT | BPF_K, dst, 0, imm, label); }
  void jeqImm(int dst, int32_t imm, int label) { jump(BPF_JMP | BPF_JEQ | BPF_K, dst, 0, imm, label); }
  void ja(int label) { jump(BPF_JMP | BPF_JA, 0, 0, 0, label); }
  void ldMapFd(int dst, int fd) {
    emit(BPF_LD | BPF_DW | BPF_IMM, dst, BPF_PSEUDO_MAP_FD, 0, fd);
    emit(0, 0, 0, 0, 0);
  }
  /** dst = address of byte `off` of the value of array map `fd` (max_entries 1). */
  void ldMapValue(int dst, int fd, int32_t off) {
    emit(BPF_LD | BPF_DW | BPF_IMM, dst, BPF_PSEUDO_MAP_VALUE, 0, fd);
    emit(0, 0, 0, 0, off);
  }
  /** r0 = the value of key 0 of map `fd` (or 0); clobbers r1-r5. */
  void lookupKey0(int fd) {
    st(BPF_W, 10, -4, 0);
    movReg(2, 10);
    addImm(2, -4);
    ldMapFd(1, fd);
    call(BPF_FUNC_map_lookup_elem);
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
/** What the interface's program does besides redirecting: re-injection (stageFd >= 0) and,
 * in skb mode, the guard (guardFd >= 0). */
struct ProgramExtras {
  int guardFd = -1;
  int stageFd = -1;
  uint64_t secret[2] = {0, 0};
  int flowFd = -1;       // flow verdicts (XdpInterface::flowFd_), -1: no flow path
  int flowGenFd = -1;
  int flowCountFd = -1;
};

/** IPv6 next headers that are extension headers: the flow path leaves such frames to the filter. */
inline bool ipv6Extension(uint8_t nh) { return nh == 0 || nh == 43 || nh == 44 || nh == 50 || nh == 51 || nh == 60 || nh == 135 || nh == 139 || nh == 140; }
/** Protocols whose first 4 bytes are source and destination ports. */
inline bool hasPorts(uint8_t proto) { return proto == 6 || proto == 17 || proto == 132 || proto == 136; }

constexpr int16_t kKeyAt = -48;    // the XdpFlowKey on the stack: fp-48 .. fp-9
constexpr int16_t kCountAt = -52;  // the counter index

/** The flow path, entered at `flow4` (IPv4) or `flow6` (IPv6) with r6 = ctx, r2 = data,
 * r3 = data_end, the frame known to hold 34 (IPv4) / 54 (IPv6) bytes: builds the frame's
 * XdpFlowKey on the stack exactly as XdpInterface::flowKey does, looks it up and, for a
 * verdict of the current generation that has not expired, counts it (per-CPU, queue*2 +
 * verdict) and returns XDP_DROP / XDP_PASS. Anything else goes to `redirect`. */
void emitFlowPath(BpfAsm& a, const ProgramExtras& x, int flow4, int flow6, int redirect) {
  enum { kLookup = 200, kPorts4, kPorts6, kCounted, kRefresh };
  auto zeroKey = [&]() {
    for (int16_t off = kKeyAt; off < kKeyAt + 40; off += 8) a.st(BPF_DW, 10, off, 0);
  };
  // NB: while no flow verdict is recorded (a filter that never sets the bit) the frame skips
  // the key and the lookup: one load and a branch.
  auto active = [&]() {
    a.ldMapValue(4, x.flowGenFd, 4);
    a.ldx(BPF_W, 4, 4, 0);
    a.jeqImm(4, 0, redirect);
  };
  a.label(flow4);
  active();
  zeroKey();
  a.ldx(BPF_H, 5, 2, 20);  // flags + fragment offset, read little-endian
  a.andImm(5, 0xFF3F);     // MF | offset (0x3FFF in network order)
  a.jneImm(5, 0, redirect);
  a.ldx(BPF_B, 5, 2, 23);
  a.stx(BPF_B, 10, 5, kKeyAt + 1);
  a.st(BPF_B, 10, kKeyAt, 4);
  a.ldx(BPF_W, 4, 2, 26);
  a.stx(BPF_W, 10, 4, kKeyAt + 8);
  a.ldx(BPF_W, 4, 2, 30);
  a.stx(BPF_W, 10, 4, kKeyAt + 24);
  a.ldx(BPF_B, 4, 2, 14);
  a.andImm(4, 0x0F);
  a.jltImm(4, 5, redirect);
  a.lshImm(4, 2);  // IPv4 header length, 20..60
  for (int proto : {6, 17, 132, 136}) a.jeqImm(5, proto, kPorts4);
  a.ja(kLookup);
  a.label(kPorts4);
  a.movReg(1, 2);
  a.addReg(1, 4);
  a.movReg(5, 1);
  a.addImm(5, 18);
  a.jgtReg(5, 3, redirect);
  a.ldx(BPF_W, 5, 1, 14);
  a.stx(BPF_W, 10, 5, kKeyAt + 4);
  a.ja(kLookup);

  a.label(flow6);
  active();
  zeroKey();
  a.ldx(BPF_B, 5, 2, 20);
  for (int nh : {0, 43, 44, 50, 51, 60, 135, 139, 140}) a.jeqImm(5, nh, redirect);
  a.stx(BPF_B, 10, 5, kKeyAt + 1);
  a.st(BPF_B, 10, kKeyAt, 6);
  for (int16_t k = 0; k < 4; k++) {
    a.ldx(BPF_DW, 4, 2, static_cast<int16_t>(22 + 8 * k));
    a.stx(BPF_DW, 10, 4, static_cast<int16_t>(kKeyAt + 8 + 8 * k));
  }
  for (int proto : {6, 17, 132, 136}) a.jeqImm(5, proto, kPorts6);
  a.ja(kLookup);
  a.label(kPorts6);
  a.movReg(4, 2);
  a.addImm(4, 58);
  a.jgtReg(4, 3, redirect);
  a.ldx(BPF_W, 5, 2, 54);
  a.stx(BPF_W, 10, 5, kKeyAt + 4);

  a.label(kLookup);
  a.ldMapFd(1, x.flowFd);
  a.movReg(2, 10);
  a.addImm(2, kKeyAt);
  a.call(BPF_FUNC_map_lookup_elem);
  a.jeqImm(0, 0, redirect);
  a.movReg(7, 0);
  a.ldx(BPF_W, 8, 7, 4);  // its generation
  a.ldMapValue(1, x.flowGenFd, 0);
  a.ldx(BPF_W, 1, 1, 0);
  a.jneReg(8, 1, redirect);
  // NB: the coarse clock (a jiffy's precision) costs a fraction of bpf_ktime_get_ns per frame.
  a.call(BPF_FUNC_ktime_get_coarse_ns);
  a.ldx(BPF_DW, 1, 7, 8);
  a.jgtReg(0, 1, redirect);  // expired: the filter judges the flow again
  // Past half its life: this one packet goes to the filter (it may renew the verdict before
  // it lapses, so a steady flow never falls back to user space wholesale); the next ones
  // are still decided here. NB: not atomic: two CPUs may both send one packet.
  a.ldx(BPF_DW, 2, 7, 16);
  a.jgtReg(0, 2, kRefresh);
  a.ldx(BPF_W, 8, 7, 0);
  a.andImm(8, 1);
  a.ldx(BPF_W, 9, 6, offsetof(xdp_md, rx_queue_index));
  a.lshImm(9, 1);
  a.addReg(9, 8);
  a.stx(BPF_W, 10, 9, kCountAt);
  a.ldMapFd(1, x.flowCountFd);
  a.movReg(2, 10);
  a.addImm(2, kCountAt);
  a.call(BPF_FUNC_map_lookup_elem);
  a.jeqImm(0, 0, kCounted);
  a.ldx(BPF_DW, 1, 0, 0);
  a.addImm(1, 1);
  a.stx(BPF_DW, 0, 1, 0);
  a.label(kCounted);
  a.movReg(0, 8);
  a.addImm(0, 1);  // 0 -> XDP_DROP (1), 1 -> XDP_PASS (2)
  a.exit();
  a.label(kRefresh);
  a.stx(BPF_DW, 7, 1, 16);  // refreshNs = expiresNs: no other packet is sent for it
  a.ja(redirect);
}

/** The injection path (XdpInterface::inject): a frame of exactly kTemplateLen bytes that
 * starts with the 128-bit secret is one of inject's template frames, run by BPF_PROG_RUN:
 * it takes the next staged packet of its queue (the u32 after the secret = the queue's
 * first staging element, its counter; record k is element base + 1 + k), grows or shrinks
 * to its length, copies it in and returns XDP_PASS (the kernel builds an skb and delivers
 * it up the stack). With a guard it also writes this CPU's nonce into 8 metadata bytes.
 * Any other frame goes on at label `notInject` with r6 = ctx. */
void emitInjection(BpfAsm& a, const ProgramExtras& x, int notInject) {
  enum { kInjDrop = 100, kInjPass, kFresh, kHave };
  using I = XdpInterface;
  a.movReg(6, 1);
  a.ldx(BPF_W, 2, 6, offsetof(xdp_md, data));
  a.ldx(BPF_W, 3, 6, offsetof(xdp_md, data_end));
  a.movReg(4, 2);
  a.addImm(4, I::kTemplateLen);
  a.jgtReg(4, 3, notInject);
  a.addImm(4, 1);
  a.jleReg(4, 3, notInject);  // longer than the template
  a.ldx(BPF_DW, 5, 2, 0);
  a.ldImm64(7, x.secret[0]);
  a.jneReg(5, 7, notInject);
  a.ldx(BPF_DW, 5, 2, 8);
  a.ldImm64(7, x.secret[1]);
  a.jneReg(5, 7, notInject);
  a.ldx(BPF_W, 9, 2, 16);  // the queue's first staging element
  a.stx(BPF_W, 10, 9, -4);
  a.movReg(2, 10);
  a.addImm(2, -4);
  a.ldMapFd(1, x.stageFd);
  a.call(BPF_FUNC_map_lookup_elem);
  a.jeqImm(0, 0, kInjDrop);
  a.ldx(BPF_W, 8, 0, 0);  // k, the frame's index in this run
  a.movReg(3, 8);
  a.addImm(3, 1);
  a.stx(BPF_W, 0, 3, 0);
  a.jgeImm(8, I::kBatch, kInjDrop);
  a.stx(BPF_W, 10, 8, -8);
  a.addReg(9, 8);
  a.addImm(9, 1);
  a.stx(BPF_W, 10, 9, -4);
  a.movReg(2, 10);
  a.addImm(2, -4);
  a.ldMapFd(1, x.stageFd);
  a.call(BPF_FUNC_map_lookup_elem);
  a.jeqImm(0, 0, kInjDrop);
  a.movReg(7, 0);
  a.ldx(BPF_W, 8, 7, 0);  // len
  a.jgtImm(8, I::kMaxLen, kInjDrop);
  a.jltImm(8, 14, kInjDrop);
  a.movReg(1, 6);
  a.movReg(2, 8);
  a.subImm(2, I::kTemplateLen);
  a.call(BPF_FUNC_xdp_adjust_tail);
  a.jneImm(0, 0, kInjDrop);
  a.movReg(1, 6);
  a.movImm(2, 0);
  a.movReg(3, 7);
  a.addImm(3, 8);
  a.movReg(4, 8);
  a.call(BPF_FUNC_xdp_store_bytes);
  a.jneImm(0, 0, kInjDrop);
  if (x.guardFd >= 0) {
    a.ldx(BPF_W, 9, 10, -8);  // k
    a.lookupKey0(x.guardFd);
    a.jeqImm(0, 0, kInjPass);
    a.movReg(7, 0);
    a.jeqImm(9, 0, kFresh);  // the first frame of a run starts a new nonce on this CPU
    a.ldx(BPF_DW, 8, 7, 0);
    a.jneImm(8, 0, kHave);
    a.label(kFresh);
    a.call(BPF_FUNC_get_prandom_u32);
    a.movReg(8, 0);
    a.lshImm(8, 32);
    a.call(BPF_FUNC_get_prandom_u32);
    a.addReg(8, 0);
    a.orImm(8, 1);
    a.stx(BPF_DW, 7, 8, 0);
    a.st(BPF_DW, 7, 8, 0);  // pending = 0
    a.label(kHave);
    a.movReg(1, 6);
    a.movImm(2, -8);
    a.call(BPF_FUNC_xdp_adjust_meta);
    a.jneImm(0, 0, kInjPass);
    a.ldx(BPF_W, 2, 6, offsetof(xdp_md, data_meta));
    a.ldx(BPF_W, 3, 6, offsetof(xdp_md, data));
    a.movReg(4, 2);
    a.addImm(4, 8);
    a.jgtReg(4, 3, kInjPass);
    a.stx(BPF_DW, 2, 8, 0);
    a.ldx(BPF_DW, 3, 7, 8);  // pending + 1
    a.addImm(3, 1);
    a.stx(BPF_DW, 7, 3, 8);
  }
  a.label(kInjPass);
  a.movImm(0, kXdpPass);
  a.exit();
  a.label(kInjDrop);
  a.movImm(0, 1);  // XDP_DROP
  a.exit();
  a.label(notInject);
  a.movReg(1, 6);
}

std::vector<bpf_insn> redirectProgram(int mapFd, bool kernelClasses, const ProgramExtras& x) {
  enum { kRedirect, kPass, kIpv4, kIpv6, kGuardSkip, kGuardRestore, kGuardKeep, kNotInject, kFlow4, kFlow6 };
  const bool flows = x.flowFd >= 0 && kernelClasses;
  BpfAsm a;
  if (x.stageFd >= 0) emitInjection(a, x, kNotInject);
  const int guardFd = x.guardFd;
  if (guardFd >= 0) {
    // skb (generic) mode: a frame nmwasm re-injected meets this program again. It carries
    // this CPU's nonce in 8 metadata bytes before its data (injectProgram): pass it.
    a.movReg(6, 1);
    a.movImm(2, -8);
    a.call(BPF_FUNC_xdp_adjust_meta);
    a.jneImm(0, 0, kGuardSkip);
    a.ldx(BPF_W, 9, 6, offsetof(xdp_md, data_meta));
    a.ldx(BPF_W, 3, 6, offsetof(xdp_md, data));
    a.movReg(4, 9);
    a.addImm(4, 8);
    a.jgtReg(4, 3, kGuardRestore);
    a.ldx(BPF_DW, 7, 9, 0);
    a.lookupKey0(guardFd);
    a.jeqImm(0, 0, kGuardRestore);
    a.ldx(BPF_DW, 8, 0, 0);
    a.jeqImm(8, 0, kGuardRestore);
    a.jneReg(7, 8, kGuardRestore);
    a.ldx(BPF_DW, 3, 0, 8);  // pending - 1; the nonce ends with the last pending frame
    a.subImm(3, 1);
    a.stx(BPF_DW, 0, 3, 8);
    a.jneImm(3, 0, kGuardKeep);
    a.st(BPF_DW, 0, 0, 0);
    a.label(kGuardKeep);
    a.st(BPF_DW, 9, 0, 0);  // the cookie is used up
    a.movReg(1, 6);
    a.movImm(2, 8);
    a.call(BPF_FUNC_xdp_adjust_meta);
    a.movImm(0, kXdpPass);
    a.exit();
    a.label(kGuardRestore);
    a.movReg(1, 6);
    a.movImm(2, 8);
    a.call(BPF_FUNC_xdp_adjust_meta);
    a.label(kGuardSkip);
    a.movReg(1, 6);
  }
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
  a.ja(flows ? kFlow4 : kRedirect);
  a.label(kIpv6);
  a.movReg(4, 2);
  a.addImm(4, 54);
  a.jgtReg(4, 3, kRedirect);
  a.ldx(BPF_B, 5, 2, 20);  // IPv6 next header
  a.jeqImm(5, 58, kPass);  // ICMPv6 (neighbour discovery included)
  a.ja(flows ? kFlow6 : kRedirect);
  if (flows) emitFlowPath(a, x, kFlow4, kFlow6, kRedirect);
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

/** Loads an XDP program; returns its fd, or -1 with errno. `log` (may be null) gets the
 * verifier's reasons on failure. */
int tryLoad(const char* name, const std::vector<bpf_insn>& insns, std::string* log) {
  bpf_prog_load_opts opts{};
  opts.sz = sizeof opts;
  opts.expected_attach_type = BPF_XDP;
  int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, name, "GPL", insns.data(), insns.size(), &opts);
  if (fd >= 0 || !log) return fd;
  // NB: only a failure is loaded again with the verifier log: a log too small for a
  // successful verification would fail the load itself (ENOSPC).
  const int err = errno;
  char buf[4096] = "";
  opts.log_buf = buf;
  opts.log_size = sizeof buf;
  opts.log_level = 1;
  fd = bpf_prog_load(BPF_PROG_TYPE_XDP, name, "GPL", insns.data(), insns.size(), &opts);
  if (fd >= 0) return fd;
  *log = buf;
  errno = err;
  return -1;
}

int loadProgram(const std::string& port, const char* name, const std::vector<bpf_insn>& insns) {
  std::string log;
  int fd = tryLoad(name, insns, &log);
  if (fd < 0) {
    const int err = errno;
    throwSyscallError(port, "bpf", err, std::string("loading the XDP program") + (!log.empty() ? " (verifier: " + log.substr(0, 300) + ")" : ""),
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
  if (stage_) munmap(stage_, stageBytes_);
  for (int fd : {linkFd_, progFd_, passFd_, mapFd_, guardFd_, stageFd_, flowFd_, flowGenFd_, flowCountFd_})
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
  return runLive(passFd_, ifindex_, queue, data, len, 1);
}

void XdpInterface::setupStaging() noexcept {
  if (getrandom(secret_, sizeof secret_, 0) != static_cast<ssize_t>(sizeof secret_)) return;
  bpf_map_create_opts opts{};
  opts.sz = sizeof opts;
  opts.map_flags = BPF_F_MMAPABLE;
  const uint32_t entries = queues_ * (kBatch + 1);
  stageFd_ = bpf_map_create(BPF_MAP_TYPE_ARRAY, "nmwasm_stage", 4, kRecord, entries, &opts);
  if (stageFd_ < 0) return;
  stageBytes_ = (uint64_t{entries} * kRecord + 4095) / 4096 * 4096;
  void* m = mmap(nullptr, stageBytes_, PROT_READ | PROT_WRITE, MAP_SHARED, stageFd_, 0);
  if (m == MAP_FAILED) {
    close(stageFd_), stageFd_ = -1;
    return;
  }
  stage_ = static_cast<uint8_t*>(m);
}

int XdpInterface::loadRedirect(const std::string& port, const std::string& name, bool skb) {
  ProgramExtras x;
  x.guardFd = skb ? guardFd_ : -1;
  if (stage_) {
    x.stageFd = stageFd_;
    x.secret[0] = secret_[0];
    x.secret[1] = secret_[1];
  }
  // The fullest program this kernel takes: flow path and batched injection, then each alone.
  for (int step = 0; step < 3; step++) {
    const bool flows = flowFd_ >= 0 && step != 2;
    const bool staged = stage_ && step != 1;
    if (!flows && !staged) break;
    x.flowFd = flows ? flowFd_ : -1;
    x.flowGenFd = flowGenFd_;
    x.flowCountFd = flowCountFd_;
    x.stageFd = staged ? stageFd_ : -1;
    const int fd = tryLoad(name.c_str(), redirectProgram(mapFd_, kernelClasses_, x), step == 0 ? &flowLog_ : nullptr);
    if (fd < 0) continue;
    if (!flows && flowFd_ >= 0) dropFlowPath();  // < 5.11: no bpf_ktime_get_coarse_ns
    if (!staged && stage_) munmap(stage_, stageBytes_), stage_ = nullptr, close(stageFd_), stageFd_ = -1;  // < 5.18: no bpf_xdp_store_bytes
    return fd;
  }
  if (flowFd_ >= 0) dropFlowPath();
  if (stage_) munmap(stage_, stageBytes_), stage_ = nullptr, close(stageFd_), stageFd_ = -1;
  x.flowFd = -1;
  x.stageFd = -1;
  return loadProgram(port, name.c_str(), redirectProgram(mapFd_, kernelClasses_, x));
}

void XdpInterface::dropFlowPath() noexcept {
  for (int* fd : {&flowFd_, &flowGenFd_, &flowCountFd_})
    if (*fd >= 0) close(*fd), *fd = -1;
}

uint32_t XdpInterface::inject(uint32_t queue, const TxPacket* pkts, uint32_t count) const noexcept {
  if (!stage_ || queue >= queues_) {
    uint32_t ok = 0;
    for (uint32_t k = 0; k < count; k++) ok += reinject(queue, pkts[k].data, pkts[k].len) ? 1 : 0;
    return ok;
  }
  const uint32_t base = queue * (kBatch + 1);
  uint8_t* area = stage_ + uint64_t{base} * kRecord;
  uint8_t tpl[kTemplateLen] = {};  // the template frame: secret, this queue's staging base
  std::memcpy(tpl, secret_, 16);
  std::memcpy(tpl + 16, &base, 4);
  uint32_t ok = 0;
  for (uint32_t first = 0; first < count; first += kBatch) {
    const uint32_t n = count - first < kBatch ? count - first : kBatch;
    uint32_t staged = 0;
    for (uint32_t k = 0; k < n; k++) {
      const TxPacket& p = pkts[first + k];
      if (p.len < 14) continue;  // not a frame: refused
      const uint32_t len = p.len < kMaxLen ? p.len : kMaxLen;
      uint8_t* rec = area + uint64_t{staged + 1} * kRecord;
      std::memcpy(rec, &len, 4);
      std::memcpy(rec + 8, p.data, len);
      staged++;
    }
    if (staged == 0) continue;
    std::memset(area, 0, 4);  // the run's frame counter
    if (runLive(progFd_, ifindex_, queue, tpl, kTemplateLen, staged)) ok += staged;
  }
  return ok;
}

bool XdpInterface::flowKey(const uint8_t* d, uint32_t len, XdpFlowKey* key) noexcept {
  std::memset(key, 0, sizeof *key);
  if (len < 14) return false;
  const uint16_t type = static_cast<uint16_t>(d[12] << 8 | d[13]);
  if (type == 0x0800) {
    if (len < 34 || d[23] == 1) return false;  // ICMP stays with the kernel
    if (((d[20] << 8 | d[21]) & 0x3FFF) != 0) return false;  // a fragment
    const uint32_t ihl = d[14] & 0x0Fu;
    if (ihl < 5) return false;
    key->family = 4;
    key->proto = d[23];
    std::memcpy(key->src, d + 26, 4);
    std::memcpy(key->dst, d + 30, 4);
    if (hasPorts(key->proto)) {
      const uint32_t l4 = 14 + ihl * 4;
      if (l4 + 4 > len) return false;
      std::memcpy(key->ports, d + l4, 4);
    }
    return true;
  }
  if (type == 0x86DD) {
    if (len < 54 || d[20] == 58 || ipv6Extension(d[20])) return false;
    key->family = 6;
    key->proto = d[20];
    std::memcpy(key->src, d + 22, 16);
    std::memcpy(key->dst, d + 38, 16);
    if (hasPorts(key->proto)) {
      if (len < 58) return false;
      std::memcpy(key->ports, d + 54, 4);
    }
    return true;
  }
  return false;
}

uint32_t XdpInterface::recordFlows(const FlowVerdict* flows, uint32_t count, uint64_t ttlNs, XdpFlowKey* keys, XdpFlowValue* values) const noexcept {
  if (flowFd_ < 0) return 0;
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  const uint64_t nowNs = uint64_t(now.tv_sec) * 1000000000ull + uint64_t(now.tv_nsec);
  if (!flowActive_.load(std::memory_order_acquire)) {
    // The first verdicts since the last invalidation: the program starts looking flows up.
    // NB: under the lock, so that a concurrent invalidateFlows never sees its new generation
    // overwritten with this older one (the old module's verdicts would count again).
    std::lock_guard<std::mutex> lock(flowMu_);
    if (!flowActive_.load(std::memory_order_acquire)) {
      const uint32_t key = 0, value[2] = {flowGen_.load(std::memory_order_acquire), 1};
      bpf_map_update_elem(flowGenFd_, &key, value, BPF_ANY);
      flowActive_.store(true, std::memory_order_release);
    }
  }
  // A generation read after the activation: at worst older than the map's (a swap meanwhile),
  // and then these verdicts never apply.
  const uint32_t gen = flowGen_.load(std::memory_order_acquire);
  uint32_t n = 0;
  for (uint32_t k = 0; k < count; k++) {
    if (!flowKey(flows[k].data, flows[k].len, &keys[n])) continue;
    values[n] = XdpFlowValue{flows[k].verdict == kVerdictPass ? 1u : 0u, gen, nowNs + ttlNs, nowNs + ttlNs / 2};
    n++;
  }
  if (n == 0) return 0;
  uint32_t done = n;
  bpf_map_batch_opts opts{};
  opts.sz = sizeof opts;
  opts.elem_flags = BPF_ANY;
  if (bpf_map_update_batch(flowFd_, keys, values, &done, &opts) == 0) return n;
  // NB: a kernel without batch updates on LRU maps: one system call a flow (first packets only).
  uint32_t ok = 0;
  for (uint32_t k = 0; k < n; k++) ok += bpf_map_update_elem(flowFd_, &keys[k], &values[k], BPF_ANY) == 0 ? 1 : 0;
  return ok;
}

void XdpInterface::invalidateFlows() noexcept {
  if (flowGenFd_ < 0) return;
  std::lock_guard<std::mutex> lock(flowMu_);
  const uint32_t gen = flowGen_.fetch_add(1, std::memory_order_acq_rel) + 1;
  const uint32_t key = 0, value[2] = {gen, 0};
  bpf_map_update_elem(flowGenFd_, &key, value, BPF_ANY);
  flowActive_.store(false, std::memory_order_release);
}

void XdpInterface::flowCounts(uint32_t queue, uint64_t* drop, uint64_t* pass) const noexcept {
  *drop = 0, *pass = 0;
  if (flowCountFd_ < 0 || queue >= queues_) return;
  const int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return;
  std::vector<uint64_t> perCpu(static_cast<size_t>(cpus));
  for (uint32_t v = 0; v < 2; v++) {
    const uint32_t key = queue * 2 + v;
    if (bpf_map_lookup_elem(flowCountFd_, &key, perCpu.data()) != 0) continue;
    uint64_t sum = 0;
    for (uint64_t c : perCpu) sum += c;
    (v == 0 ? *drop : *pass) = sum;
  }
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
  bpf_map_create_opts gopts{};
  gopts.sz = sizeof gopts;
  x->guardFd_ = bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, "nmwasm_guard", 4, 16, 1, &gopts);
  if (x->guardFd_ < 0)
    throwSyscallError(port, "bpf_map_create", errno, "creating the re-injection guard map for " + ifname, "run as root (CAP_BPF, CAP_NET_ADMIN) or use packet:" + ifname);
  if (kernelClasses) {
    // The flow path (docs/ABI.md "Flow verdicts"); a kernel without LRU maps runs without it.
    x->flowFd_ = bpf_map_create(BPF_MAP_TYPE_LRU_HASH, "nmwasm_flows", sizeof(XdpFlowKey), sizeof(XdpFlowValue), XdpInterface::kFlowEntries, &gopts);
    x->flowGenFd_ = bpf_map_create(BPF_MAP_TYPE_ARRAY, "nmwasm_flowgen", 4, 8, 1, &gopts);
    x->flowCountFd_ = bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, "nmwasm_flowcnt", 4, 8, queues * 2, &gopts);
    const uint32_t key = 0, value[2] = {1, 0};  // generation 1, no verdict recorded yet
    if (x->flowFd_ < 0 || x->flowGenFd_ < 0 || x->flowCountFd_ < 0 || bpf_map_update_elem(x->flowGenFd_, &key, value, BPF_ANY) != 0) x->dropFlowPath();
  }
  x->passFd_ = loadProgram(port, "nmwasm_host", {bpf_insn{BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, kXdpPass}, bpf_insn{BPF_JMP | BPF_EXIT, 0, 0, 0, 0}});

  x->setupStaging();

  int err = 0;
  if (mode != XdpAttachMode::Skb) {
    x->progFd_ = x->loadRedirect(port, name, false);
    x->linkFd_ = attachLink(x->progFd_, ifindex, XDP_FLAGS_DRV_MODE);
    err = errno;
    x->native_ = x->linkFd_ >= 0;
  }
  if (x->linkFd_ < 0 && mode != XdpAttachMode::Native) {
    // skb mode: a re-injected frame passes the program again; this version lets it through.
    if (x->progFd_ >= 0) close(x->progFd_), x->progFd_ = -1;
    x->progFd_ = x->loadRedirect(port, name, true);
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

// Test driver for native/netmap/netmap_abi.h (built by test/native/netmap_abi.test.ts with g++):
// prints, as one JSON object, the sizes and field offsets of netmap's kernel structures,
// the ioctl numbers and flag values, and the NETMAP_REQ_REGISTER request encoded for the
// plan given on the command line:
//   netmap_abi_driver NAME MODE RINGID FLAGS MEMID TXSLOTS RXSLOTS TXRINGS RXRINGS HOSTTX HOSTRX
#include <cinttypes>
#include <cstdio>
#include <cstdlib>

#include "netmap/netmap_abi.h"

using namespace nmwasm::netmap;

#define OFS(type, field) std::printf("\"%s.%s\":%zu,", #type, #field, offsetof(type, field))
#define SIZE(type) std::printf("\"sizeof.%s\":%zu,", #type, sizeof(type))

static unsigned long num(const char* text) { return std::strtoul(text, nullptr, 0); }

int main(int argc, char** argv) {
  if (argc != 12) {
    std::fprintf(stderr, "usage: %s NAME MODE RINGID FLAGS MEMID TXSLOTS RXSLOTS TXRINGS RXRINGS HOSTTX HOSTRX\n", argv[0]);
    return 2;
  }
  std::printf("{");
  SIZE(netmap_slot); OFS(netmap_slot, buf_idx); OFS(netmap_slot, len); OFS(netmap_slot, flags); OFS(netmap_slot, ptr);
  SIZE(netmap_ring); OFS(netmap_ring, buf_ofs); OFS(netmap_ring, num_slots); OFS(netmap_ring, nr_buf_size);
  OFS(netmap_ring, ringid); OFS(netmap_ring, dir); OFS(netmap_ring, head); OFS(netmap_ring, cur); OFS(netmap_ring, tail);
  OFS(netmap_ring, flags); OFS(netmap_ring, ts); OFS(netmap_ring, offset_mask); OFS(netmap_ring, buf_align); OFS(netmap_ring, sem);
  SIZE(netmap_if); OFS(netmap_if, ni_name); OFS(netmap_if, ni_version); OFS(netmap_if, ni_flags); OFS(netmap_if, ni_tx_rings);
  OFS(netmap_if, ni_rx_rings); OFS(netmap_if, ni_bufs_head); OFS(netmap_if, ni_host_tx_rings); OFS(netmap_if, ni_host_rx_rings);
  OFS(netmap_if, ni_spare1);
  SIZE(nmreq_option); OFS(nmreq_option, nro_next); OFS(nmreq_option, nro_reqtype); OFS(nmreq_option, nro_status); OFS(nmreq_option, nro_size);
  SIZE(nmreq_header); OFS(nmreq_header, nr_version); OFS(nmreq_header, nr_reqtype); OFS(nmreq_header, nr_reserved);
  OFS(nmreq_header, nr_name); OFS(nmreq_header, nr_options); OFS(nmreq_header, nr_body);
  SIZE(nmreq_register); OFS(nmreq_register, nr_offset); OFS(nmreq_register, nr_memsize); OFS(nmreq_register, nr_tx_slots);
  OFS(nmreq_register, nr_rx_slots); OFS(nmreq_register, nr_tx_rings); OFS(nmreq_register, nr_rx_rings);
  OFS(nmreq_register, nr_host_tx_rings); OFS(nmreq_register, nr_host_rx_rings); OFS(nmreq_register, nr_mem_id);
  OFS(nmreq_register, nr_ringid); OFS(nmreq_register, nr_mode); OFS(nmreq_register, nr_extra_bufs); OFS(nmreq_register, nr_flags);
  SIZE(nmreq_port_info_get); OFS(nmreq_port_info_get, nr_memsize); OFS(nmreq_port_info_get, nr_tx_slots);
  OFS(nmreq_port_info_get, nr_rx_slots); OFS(nmreq_port_info_get, nr_tx_rings); OFS(nmreq_port_info_get, nr_rx_rings);
  OFS(nmreq_port_info_get, nr_host_tx_rings); OFS(nmreq_port_info_get, nr_host_rx_rings); OFS(nmreq_port_info_get, nr_mem_id);
  OFS(nmreq_port_info_get, pad);
  SIZE(nmreq_pools_info); OFS(nmreq_pools_info, nr_mem_id); OFS(nmreq_pools_info, nr_if_pool_offset);
  OFS(nmreq_pools_info, nr_ring_pool_offset); OFS(nmreq_pools_info, nr_buf_pool_offset); OFS(nmreq_pools_info, nr_buf_pool_objsize);
  SIZE(nmreq_opt_extmem); OFS(nmreq_opt_extmem, nro_opt); OFS(nmreq_opt_extmem, nro_usrptr); OFS(nmreq_opt_extmem, nro_info);

  std::printf("\"NETMAP_API\":%u,\"NIOCCTRL\":%lu,\"NIOCTXSYNC\":%lu,\"NIOCRXSYNC\":%lu,", unsigned{NETMAP_API}, NIOCCTRL, NIOCTXSYNC, NIOCRXSYNC);
  std::printf("\"NS\":[%u,%u,%u,%u,%u,%u,%u],", NS_BUF_CHANGED, NS_REPORT, NS_FORWARD, NS_NO_LEARN, NS_INDIRECT, NS_MOREFRAG, unsigned{NS_PORT_MASK});
  std::printf("\"NR_REG\":[%u,%u,%u,%u,%u,%u,%u,%u,%u],", NR_REG_DEFAULT, NR_REG_ALL_NIC, NR_REG_SW, NR_REG_NIC_SW, NR_REG_ONE_NIC,
              NR_REG_PIPE_MASTER, NR_REG_PIPE_SLAVE, NR_REG_NULL, NR_REG_ONE_SW);
  std::printf("\"NR_FLAGS\":[%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 "],",
              NR_MONITOR_TX, NR_MONITOR_RX, NR_ZCOPY_MON, NR_EXCLUSIVE, NR_RX_RINGS_ONLY, NR_TX_RINGS_ONLY, NR_ACCEPT_VNET_HDR, NR_DO_RX_POLL, NR_NO_TX_POLL);
  std::printf("\"REQ\":[%u,%u,%u,%u],\"OPT\":[%u,%u],", unsigned{NETMAP_REQ_REGISTER}, unsigned{NETMAP_REQ_PORT_INFO_GET},
              unsigned{NETMAP_REQ_POOLS_INFO_GET}, unsigned{NETMAP_REQ_CSB_ENABLE}, NETMAP_REQ_OPT_EXTMEM, NETMAP_REQ_OPT_OFFSETS);

  RegisterPlan plan{argv[1], static_cast<uint32_t>(num(argv[2])), static_cast<uint16_t>(num(argv[3])), num(argv[4]),
                    static_cast<uint16_t>(num(argv[5])), static_cast<uint32_t>(num(argv[6])), static_cast<uint32_t>(num(argv[7])),
                    static_cast<uint16_t>(num(argv[8])), static_cast<uint16_t>(num(argv[9])), static_cast<uint16_t>(num(argv[10])),
                    static_cast<uint16_t>(num(argv[11])), 0};
  nmreq_header hdr;
  nmreq_register reg;
  std::memset(&hdr, 0xAB, sizeof hdr);  // poison: fill_register_request must clear every byte it does not set
  std::memset(&reg, 0xAB, sizeof reg);
  const bool ok = fill_register_request(&hdr, &reg, plan);
  std::printf("\"ok\":%s,\"bodyIsReg\":%s,\"header\":\"", ok ? "true" : "false", hdr.nr_body == reinterpret_cast<uintptr_t>(&reg) ? "true" : "false");
  const auto* hb = reinterpret_cast<const unsigned char*>(&hdr);
  for (size_t i = 0; i < offsetof(nmreq_header, nr_options); i++) std::printf("%02x", hb[i]);  // pointers vary: not printed
  std::printf("\",\"optionsZero\":%s,\"register\":\"", hdr.nr_options == 0 ? "true" : "false");
  const auto* rb = reinterpret_cast<const unsigned char*>(&reg);
  for (size_t i = 0; i < sizeof reg; i++) std::printf("%02x", rb[i]);
  std::printf("\",");

  nmreq_opt_extmem ext;
  static unsigned char region[4096];
  push_extmem_option(&hdr, &ext, region, sizeof region);
  std::printf("\"extmem\":{\"pushed\":%s,\"next\":%" PRIu64 ",\"type\":%u,\"memsize\":%" PRIu64 ",\"usrptrOk\":%s},",
              hdr.nr_options == reinterpret_cast<uintptr_t>(&ext) ? "true" : "false", ext.nro_opt.nro_next, ext.nro_opt.nro_reqtype,
              ext.nro_info.nr_memsize, ext.nro_usrptr == reinterpret_cast<uintptr_t>(region) ? "true" : "false");
  nmreq_port_info_get info;
  const bool infoOk = fill_port_info_request(&hdr, &info, plan.name);
  std::printf("\"info\":{\"ok\":%s,\"reqtype\":%u,\"version\":%u}", infoOk ? "true" : "false", unsigned{hdr.nr_reqtype}, unsigned{hdr.nr_version});
  std::printf("}\n");
  return 0;
}

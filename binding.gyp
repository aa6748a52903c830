# Native addon build: one target, nmwasm -> build/Release/nmwasm.node.
# C++17, -O2, C++ exceptions on (NAPI_CPP_EXCEPTIONS): they are thrown only on
# control paths (open/attach/map), never per packet.
# pcap_file_dir lets a developer build against a stand-in pcap_file.{h,cc}
# (node-gyp rebuild -- -Dpcap_file_dir=../relative/dir: gyp needs a path
# relative to this file); the default is native/formats/.
{
  "variables": {
    "pcap_file_dir%": "native/formats",
    # AF_XDP backend: built when pkg-config finds libxdp and libbpf (Debian: libxdp-dev
    # libbpf-dev pkg-config); without them the xdp: spec says how to get it.
    "have_xdp%": "<!(pkg-config --exists libxdp libbpf 2>/dev/null && echo 1 || echo 0)"
  },
  "targets": [
    {
      "target_name": "nmwasm",
      "sources": [
        "native/core/addon.cc",
        "native/core/errors.cc",
        "native/core/packet_memory.cc",
        "native/ports/port.cc",
        "native/ports/port_registry.cc",
        "native/ports/ports_api.cc",
        "native/core/ring_sync.cc",
        "native/core/ring.cc",
        "native/ports/port_gen.cc",
        "native/ports/port_pcap.cc",
        "native/ports/port_packet.cc",
        "native/ports/link_watch.cc",
        "native/netmap/netmap_session.cc",
        "native/netmap/port_netmap.cc",
        "native/ports/port_soft.cc",
        "native/soft/soft_domain.cc",
        "native/soft/soft_queue.cc",
        "native/soft/vale_switch.cc",
        "native/core/thread_clock.cc",
        "native/core/peercred.cc",
        "<(pcap_file_dir)/pcap_file.cc",
        "<(pcap_file_dir)/pcap_writer.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "native",
        "<(pcap_file_dir)"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions", "-O3"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-O3"],
      "cflags": ["-O2", "-fexceptions", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_cc": ["-std=c++17", "-O2", "-fexceptions"],
      "conditions": [
        ["have_xdp==1", {
          "sources": ["native/ports/port_xdp.cc", "native/ports/xdp_program.cc"],
          "defines": ["NMWASM_HAVE_XDP"],
          "cflags_cc": ["<!@(pkg-config --cflags libxdp libbpf)"],
          "libraries": ["<!@(pkg-config --libs libxdp libbpf)"]
        }]
      ]
    }
  ]
}

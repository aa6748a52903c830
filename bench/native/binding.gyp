# The benchmarks' addon, nmwasm_bench -> bench/native/build/Release/nmwasm_bench.node, built
# only by the benchmarks (bench/lib/build.mjs, `npm run bench`), never part of the product:
# the product addon's sources (read from ../../binding.gyp by sources.mjs, its registration
# left out) plus the benchmark entry points: benchGen (bench_gen.cc), benchFirewallC
# (bench_firewall.cc) and the batch-loop harness for wasm filters (bench_loop.cc).
{
  "variables": {
    "have_xdp%": "<!(pkg-config --exists libxdp libbpf 2>/dev/null && echo 1 || echo 0)"
  },
  "targets": [
    {
      "target_name": "nmwasm_bench",
      "sources": [
        "<!@(node sources.mjs base)",
        "bench_addon.cc",
        "bench_gen.cc",
        "bench_firewall.cc",
        "bench_loop.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "../../native",
        "../../native/formats",
        "../c"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions", "-O3"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-O3"],
      "cflags": ["-O2", "-fexceptions", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_cc": ["-std=c++17", "-O2", "-fexceptions"],
      "conditions": [
        ["have_xdp==1", {
          "sources": ["<!@(node sources.mjs xdp)"],
          "defines": ["NMWASM_HAVE_XDP"],
          "cflags_cc": ["<!@(pkg-config --cflags libxdp libbpf)"],
          "libraries": ["<!@(pkg-config --libs libxdp libbpf)"]
        }]
      ]
    }
  ]
}

// pcap_dump.cc — test driver for native/formats/pcap_file.cc (built by test/native/pcap_file_corpus.test.ts).
//   pcap_dump read FILE...   per file: "F <path>" then "N <count>" and one "<caplen> <origlen> <ts_ns> <fnv1a32>"
//                            line per packet, or one "E <json {code,message}>" line.
//   pcap_dump copy IN OUT    reads IN and writes every packet to OUT with PcapWriter.
//   pcap_dump abort OUT      creates a writer for OUT, writes one packet, aborts; prints the temp path.
//   pcap_dump drop OUT       the same, but the writer is destroyed without commit() or abort().
// Exit status: 0, or 2 on a usage/commit error.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "../../native/formats/pcap_file.h"
#include "../../native/formats/pcap_writer.h"

static void printJsonString(const std::string& s) {
  std::putchar('"');
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') std::printf("\\%c", c);
    else if (c < 0x20) std::printf("\\u%04x", c);
    else std::putchar(c);
  }
  std::putchar('"');
}

static void dumpOne(const char* path) {
  std::printf("F %s\n", path);
  try {
    auto reader = PcapReader::open(path);
    std::vector<uint8_t> buf(kMaxCaplen);
    std::printf("N %llu\n", static_cast<unsigned long long>(reader->packetCount()));
    uint32_t caplen, origlen;
    uint64_t ts;
    for (int pass = 0; pass < 2; ++pass) {  // second pass checks rewind() reproduces the first
      std::string out;
      uint64_t n = 0;
      while (reader->next(buf.data(), buf.size(), &caplen, &origlen, &ts)) {
        ++n;
        uint32_t sum = 2166136261u;  // FNV-1a of the packet bytes
        for (uint32_t i = 0; i < caplen; ++i) sum = (sum ^ buf[i]) * 16777619u;
        out += std::to_string(caplen) + " " + std::to_string(origlen) + " " + std::to_string(ts) + " " +
               std::to_string(sum) + "\n";
      }
      if (n != reader->packetCount()) std::printf("X next() gave %llu packets\n", static_cast<unsigned long long>(n));
      if (pass == 0) std::fputs(out.c_str(), stdout);
      reader->rewind();
    }
  } catch (const PcapError& e) {
    std::printf("E {\"code\":");
    printJsonString(e.code);
    std::printf(",\"message\":");
    printJsonString(e.message);
    std::printf(",\"err\":%d}\n", e.err);
  }
}

int main(int argc, char** argv) {
  if (argc >= 3 && std::strcmp(argv[1], "read") == 0) {
    for (int i = 2; i < argc; ++i) dumpOne(argv[i]);
    return 0;
  }
  try {
    if (argc == 4 && std::strcmp(argv[1], "copy") == 0) {
      auto reader = PcapReader::open(argv[2]);
      auto writer = PcapWriter::create(argv[3]);
      std::vector<uint8_t> buf(kMaxCaplen);
      uint32_t caplen, origlen;
      uint64_t ts;
      while (reader->next(buf.data(), buf.size(), &caplen, &origlen, &ts)) writer->write(buf.data(), caplen, origlen, ts);
      writer->commit();
      std::printf("wrote %llu\n", static_cast<unsigned long long>(writer->packetsWritten()));
      return 0;
    }
    if (argc == 3 && (std::strcmp(argv[1], "abort") == 0 || std::strcmp(argv[1], "drop") == 0)) {
      auto writer = PcapWriter::create(argv[2]);
      uint8_t frame[60] = {0};
      writer->write(frame, sizeof frame, sizeof frame, 1);
      std::printf("%s\n", writer->tempPath().c_str());
      if (argv[1][0] == 'a') writer->abort();
      return 0;
    }
  } catch (const PcapError& e) {
    std::printf("E %s %s\n", e.code.c_str(), e.message.c_str());
    return 2;
  }
  std::fprintf(stderr, "usage: pcap_dump read FILE... | copy IN OUT | abort OUT | drop OUT\n");
  return 2;
}

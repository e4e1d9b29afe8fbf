// libFuzzer target: the fixed framer, whole and in random chunks (see framer_harness.hpp).
#include "framer_harness.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    tcpecho::fuzz::fuzz_framer(tcpecho::FramingMode::Fixed, data, size);
    return 0;
}

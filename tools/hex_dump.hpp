// Hex windows around a failure offset, as both the TCP and the UDP reports show them.
#pragma once

#include <cstddef>
#include <cstdio>
#include <string>

namespace tcpecho::probe {

// "a1 b2 c3 d4 [e5] f6 07 18": `before_len` bytes before the offset, then `at_len` bytes from
// it, the first one marked; `nothing` (e.g. "[EOF]") when there is no byte at the offset.
inline std::string hex_window(const std::byte* before, std::size_t before_len, const std::byte* at,
                              std::size_t at_len, const char* nothing = "[EOF]") {
    std::string out;
    char b[8];
    for (std::size_t i = 0; i < before_len; ++i) {
        std::snprintf(b, sizeof b, "%02x ", std::to_integer<unsigned>(before[i]));
        out += b;
    }
    for (std::size_t i = 0; i < at_len; ++i) {
        std::snprintf(b, sizeof b, i == 0 ? "[%02x]" : " %02x", std::to_integer<unsigned>(at[i]));
        out += b;
    }
    if (at_len == 0) out += nothing;
    return out;
}

}  // namespace tcpecho::probe

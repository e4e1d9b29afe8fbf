// Numbers with units, as written in the config file and on the probe's command line: one
// spelling for both.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace tcpecho {

// Bytes: "512", "64K", "64KiB", "16MB", "1GiB" — K/M/G are binary whatever the spelling
// (k, K, KB, KiB, kib ...). nullopt when unparsable or when it overflows 64 bits.
std::optional<std::uint64_t> parse_size(std::string_view text) noexcept;

// Microseconds: "250us", "250ms", "10s", "10" (seconds), "5m"/"5min", "1h", with an optional
// decimal fraction ("1.5s", "0.25"). nullopt when unparsable, finer than a microsecond, or
// when it overflows 64 bits.
std::optional<std::uint64_t> parse_duration_us(std::string_view text) noexcept;

}  // namespace tcpecho

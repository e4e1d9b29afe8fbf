// The one clock: CLOCK_MONOTONIC, which is also std::chrono::steady_clock on Linux (the probe's
// UDP header carries it in nanoseconds; systemd's MONOTONIC_USEC= is it in microseconds).
#pragma once

#include <time.h>

#include <cstdint>

namespace tcpecho {

[[nodiscard]] inline std::uint64_t monotonic_ns() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<std::uint64_t>(ts.tv_nsec);
}
[[nodiscard]] inline std::uint64_t monotonic_us() noexcept { return monotonic_ns() / 1'000; }
[[nodiscard]] inline std::uint64_t monotonic_ms() noexcept { return monotonic_ns() / 1'000'000; }

}  // namespace tcpecho

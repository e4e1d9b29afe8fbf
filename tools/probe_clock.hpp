// The probe's one clock: steady_clock, which is CLOCK_MONOTONIC on Linux (the UDP header's
// send time is this clock in nanoseconds).
#pragma once

#include <chrono>
#include <cstdint>

namespace tcpecho::probe {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;

inline std::uint64_t to_ns(TimePoint t) noexcept {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
}
inline TimePoint from_ns(std::uint64_t ns) noexcept {
    return TimePoint(std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(ns)));
}

}  // namespace tcpecho::probe

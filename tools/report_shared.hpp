// Pieces of the output that the TCP report (report.cpp) and the UDP report (udp_report.cpp)
// share, so that the lines and -J keys the two have in common are written by one hand.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "tools/histogram.hpp"
#include "tools/json_writer.hpp"
#include "tools/probe_options.hpp"

namespace tcpecho::probe {

std::string duration_text(std::uint64_t ns);  // "12.3 us", "4.56 ms", "7.89 s"
double per_second(std::uint64_t n, double seconds) noexcept;

// The header's amount: "1 message", "100 messages" for --count, "messages for 2.5 s" for
// --time (which wins); "" with neither.
std::string amount_text(const Options& o, const char* one, const char* many);
// The payload sizes, framing not included: "1 byte", "64 bytes", "1-1400 bytes".
std::string payload_size_text(const Options& o);

// "latency:  min ..., p50 ..., p90 ..., p99 ..., p99.9 ..., max ...NOTE"; nothing when empty.
void print_latency(std::FILE* out, const LogLinearHistogram& latency_ns, const char* note);
// "rate:     S s, N UNIT/s, M MiB/s each way", over the run's `seconds`.
void print_rate(std::FILE* out, double seconds, std::uint64_t count, const char* unit, std::uint64_t bytes);

// The "target" object of the -J document.
void target_json(JsonWriter& j, const Options& o, const std::string& peer);
// The "latency_us" object of the -J document.
void latency_json(JsonWriter& j, const LogLinearHistogram& latency_ns, bool from_scheduled_time);

}  // namespace tcpecho::probe

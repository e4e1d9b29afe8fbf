// The probe's output: a header, progress lines, the human summary (in the spirit of ping and
// iperf3), failure messages on stderr, and the -J document.
#pragma once

#include <cstdio>
#include <string>

#include "tools/engine.hpp"
#include "tools/histogram.hpp"
#include "tools/json_writer.hpp"
#include "tools/probe_options.hpp"
#include "tools/probe_result.hpp"

namespace tcpecho::probe {

void print_header(std::FILE* out, const Options& options);
void print_progress(std::FILE* out, const Progress& now, const Progress& before);
void print_summary(std::FILE* out, const Options& options, const RunResult& result);
// Every failure, with connection, message, offset and the bytes around it.
void print_failures(std::FILE* err, const Options& options, const RunResult& result);
std::string json_report(const Options& options, const RunResult& result);

// Pieces the UDP report (udp_report.hpp) shares.
std::string duration_text(std::uint64_t ns);  // "12.3 us", "4.56 ms", "7.89 s"
double per_second(std::uint64_t n, double seconds) noexcept;
// "latency:  min ..., p50 ..., p90 ..., p99 ..., p99.9 ..., max ...NOTE"; nothing when empty.
void print_latency(std::FILE* out, const LogLinearHistogram& latency_ns, const char* note);
// The "latency_us" object of the -J document.
void latency_json(JsonWriter& j, const LogLinearHistogram& latency_ns, bool from_scheduled_time);

}  // namespace tcpecho::probe

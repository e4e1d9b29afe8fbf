// The probe's output: a header, progress lines, the human summary (in the spirit of ping and
// iperf3), failure messages on stderr, and the -J document.
#pragma once

#include <cstdio>
#include <string>

#include "tools/engine.hpp"
#include "tools/probe_options.hpp"
#include "tools/probe_result.hpp"

namespace tcpecho::probe {

void print_header(std::FILE* out, const Options& options);
void print_progress(std::FILE* out, const Progress& now, const Progress& before);
void print_summary(std::FILE* out, const Options& options, const RunResult& result);
// Every failure, with connection, message, offset and the bytes around it.
void print_failures(std::FILE* err, const Options& options, const RunResult& result);
std::string json_report(const Options& options, const RunResult& result);

}  // namespace tcpecho::probe

// Runs a UDP probe (--udp): resolves the target, spreads the flows over threads (each an
// epoll loop over its flows' sockets, with timers for pacing and loss deadlines), starts them
// together, and collects results. The TCP engine is engine.hpp; both share g_interrupts and
// the progress callback.
#pragma once

#include <functional>

#include "tools/engine.hpp"
#include "tools/probe_options.hpp"
#include "tools/udp_result.hpp"

namespace tcpecho::probe {

// A resolution failure comes back as a Network failure on every flow.
UdpRunResult run_udp_probe(const Options& options, const std::function<void(const Progress&)>& on_progress);

}  // namespace tcpecho::probe

// Runs a probe: resolves the target, spreads the connections over threads (each an
// edge-triggered epoll loop over its sessions), starts them together, and collects results.
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "tools/probe_options.hpp"
#include "tools/probe_result.hpp"

namespace tcpecho::probe {

// Live figures for the progress line, summed over threads.
struct Progress {
    double seconds;
    std::uint64_t messages_verified;
    std::uint64_t bytes_verified;
    unsigned failed_connections;
    std::uint64_t lost = 0;  // --udp: datagrams counted lost so far
};

// SIGINTs so far, counted by the handler. 1: stop sending new messages, let what is in
// flight come back, report (like ping). 2: give up on what is in flight and report now.
extern std::atomic<int> g_interrupts;

// Resolution failures come back as a RunResult with a Connect failure on connection 0.
// `on_progress` (may be empty) is called about once a second from the calling thread.
RunResult run_probe(const Options& options, const std::function<void(const Progress&)>& on_progress);

// The seed connection `id` uses: distinct streams per connection, all derived from one seed.
std::uint64_t connection_seed(std::uint64_t seed, unsigned id) noexcept;

}  // namespace tcpecho::probe

// What a probe run found: per connection and merged, ready for the human and JSON reports.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tools/histogram.hpp"

namespace tcpecho::probe {

enum class FailureKind : std::uint8_t {
    Mismatch,   // a received byte differs from the one sent at that offset
    Missing,    // the server closed (EOF) before echoing everything
    Extra,      // the server sent more bytes than it was sent
    ShortRead,  // --recv once: one recv() returned part of a message
    Timeout,    // connect or echo stalled for --timeout
    Reset,      // connection reset (or another fatal socket error)
    Connect,    // could not resolve or connect
};

std::string_view to_string(FailureKind kind) noexcept;
// 1 for what the server got wrong, 3 for what the network or the server's liveness did.
int exit_status_of(FailureKind kind) noexcept;

struct Failure {
    FailureKind kind;
    unsigned connection;
    std::uint64_t message;  // index of the message being echoed
    std::uint64_t offset;   // byte offset in the connection's stream (what was sent, framing included)
    std::string detail;     // one readable sentence
    std::string expected;   // hex around the offset, "[xx]" marks the byte at the offset
    std::string received;
};

struct TcpInfo {
    bool valid = false;
    std::uint32_t snd_mss = 0;
    std::uint32_t rcv_mss = 0;
    std::uint32_t advmss = 0;
    std::uint32_t rtt_us = 0;
    std::uint32_t rttvar_us = 0;
    std::uint32_t snd_cwnd = 0;
    std::uint32_t total_retrans = 0;
    std::uint32_t reordering = 0;
    std::uint32_t rcv_space = 0;
    std::uint32_t rcv_ooopack = 0;  // segments that arrived out of order (queued, not dropped)
};

struct ConnectionResult {
    unsigned id = 0;
    std::string local;  // our address:port, to match server logs
    std::uint64_t messages_sent = 0;
    std::uint64_t messages_verified = 0;
    std::uint64_t bytes_sent = 0;
    std::uint64_t bytes_verified = 0;
    std::uint64_t recv_calls = 0;  // calls that returned data
    std::vector<std::uint64_t> first_recv_sizes;  // the first few, in order
    TcpInfo tcp_info;                             // read just before the final half-close
    std::optional<Failure> failure;
};

// Counters and histograms one thread fills and the report merges.
struct Measurements {
    LogLinearHistogram latency_ns;
    LogLinearHistogram recv_size;
    LogLinearHistogram recv_calls_per_message;
    ExactCounts recv_size_counts;
    std::uint64_t recv_calls = 0;   // returned data
    std::uint64_t recv_eagain = 0;  // returned EAGAIN
    std::uint64_t send_calls = 0;
    std::uint64_t lowat_changes = 0;  // setsockopt(SO_RCVLOWAT) calls for --recv lowat

    void merge(const Measurements& other) noexcept {
        latency_ns.merge(other.latency_ns);
        recv_size.merge(other.recv_size);
        recv_calls_per_message.merge(other.recv_calls_per_message);
        recv_size_counts.merge(other.recv_size_counts);
        recv_calls += other.recv_calls;
        recv_eagain += other.recv_eagain;
        send_calls += other.send_calls;
        lowat_changes += other.lowat_changes;
    }
};

struct RunResult {
    std::string peer;  // the address connected to, e.g. "127.0.0.1:7007"
    double seconds = 0;
    std::vector<ConnectionResult> connections;
    Measurements totals;
    bool interrupted = false;  // SIGINT: stopped early, like ping

    // 0 when every connection verified; else the worst failure's status (1 outranks 3).
    [[nodiscard]] int exit_status() const noexcept;
};

}  // namespace tcpecho::probe

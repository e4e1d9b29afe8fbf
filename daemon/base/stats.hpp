// Counters. Each worker owns one WorkerStats and is its only writer; other threads (the
// summary on SIGUSR1 and at exit) read them. Single writer => a relaxed load+store, no locked
// read-modify-write on the per-message path.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace tcpecho {

class Counter {
public:
    void add(std::uint64_t n = 1) noexcept {
        value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    [[nodiscard]] std::uint64_t get() const noexcept { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::uint64_t> value_{0};
};

// X-macro: one list gives the fields, their names in logs and metrics, their help text (the
// Prometheus HELP line), and the sum.
#define TCPECHO_COUNTERS(X)                                                                             \
    X(connections_accepted, "accepted and served")                                                      \
    X(connections_closed, "served connections that ended, for any reason")                              \
    X(connections_rejected, "closed at once: the listener was at max_connections")                      \
    X(accept_fd_exhausted, "EMFILE/ENFILE: a new connection closed at once (reserve fd)")               \
    X(bytes_received, "bytes read from TCP connections")                                                \
    X(bytes_sent, "bytes echoed on TCP connections")                                                    \
    X(frames_echoed, "framed modes: whole frames queued for echo")                                      \
    X(frames_too_large, "connections closed for exceeding max_frame")                                   \
    X(incomplete_frames_at_eof, "peer half-closed with a partial frame; it was dropped")                \
    X(idle_timeouts, "connections closed by idle_timeout")                                              \
    X(send_timeouts, "closed by send_timeout: echo unacknowledged (TCP_USER_TIMEOUT)")                  \
    X(connection_resets, "the peer reset the connection (ECONNRESET, EPIPE): its choice")               \
    X(connection_errors, "failed otherwise mid-stream (unreachable, a local error)")                    \
    X(read_pauses, "backpressure: reading stopped at output_high_watermark")                            \
    X(memory_read_pauses, "a connection stopped reading: max_buffer_memory reached")                    \
    X(memory_accept_pauses, "a worker stopped accepting: max_buffer_memory reached")                    \
    X(drain_forced_closes, "still open when drain_timeout expired")                                     \
    X(metrics_scrapes, "GET or HEAD /metrics requests answered")                                        \
    X(metrics_errors, "metrics endpoint requests answered with an HTTP error")                          \
    X(metrics_refused, "metrics endpoint connections closed at once: 16 scrapers already open")         \
    X(udp_datagrams_received, "UDP datagrams read")                                                     \
    X(udp_datagrams_echoed, "UDP datagrams echoed")                                                     \
    X(udp_bytes_received, "UDP payload bytes read")                                                     \
    X(udp_bytes_echoed, "UDP payload bytes echoed")                                                     \
    X(udp_dropped_truncated, "larger than udp_max_datagram (MSG_TRUNC): never echoed cut")              \
    X(udp_dropped_reflection, "source port 0, 7, 13, 19, 37 or not unicast: reflection guard")          \
    X(udp_dropped_own_port, "from a port tcpechod serves UDP on: an echo loop")                         \
    X(udp_dropped_not_unicast, "sent to a broadcast or multicast address")                              \
    X(udp_dropped_rate_limit, "over the source address's udp_rate_limit")                               \
    X(udp_dropped_send_full, "send buffer full (EAGAIN): dropped, the loop never blocks")               \
    X(udp_dropped_receive_queue, "receive queue overflowed (SO_RXQ_OVFL; seen with the next datagram)") \
    X(udp_send_errors, "sendmmsg failed otherwise (e.g. unreachable): dropped")                         \
    X(udp_receive_errors, "recvmmsg failed otherwise than EAGAIN")

struct WorkerStats {
#define TCPECHO_COUNTER_FIELD(name, help) Counter name;
    TCPECHO_COUNTERS(TCPECHO_COUNTER_FIELD)
#undef TCPECHO_COUNTER_FIELD
};

// A plain copy for reporting (a sum over workers).
struct StatsSnapshot {
#define TCPECHO_SNAPSHOT_FIELD(name, help) std::uint64_t name = 0;
    TCPECHO_COUNTERS(TCPECHO_SNAPSHOT_FIELD)
#undef TCPECHO_SNAPSHOT_FIELD

    void accumulate(const WorkerStats& s) noexcept;
    [[nodiscard]] std::uint64_t active_connections() const noexcept {
        // The two counters are read one after the other while workers run: a connection
        // accepted and closed in between must not make this wrap around.
        return connections_closed < connections_accepted ? connections_accepted - connections_closed : 0;
    }
    // "connections_active=1 connections_accepted=3 ..." (key=value, one line).
    [[nodiscard]] std::string format() const;
};

}  // namespace tcpecho

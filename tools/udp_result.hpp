// What a UDP probe run found: per flow and in total, ready for the human and JSON reports.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tools/histogram.hpp"

namespace tcpecho::probe {

// Every datagram sent ends as exactly one of received, lost, or corrupted-in-flight (an echo
// whose header names it came back damaged); duplicated, late and the other corrupted ones
// are extra arrivals. Reordered ones are among the received.
struct UdpCounters {
    std::uint64_t sent = 0;
    std::uint64_t received = 0;    // unique, verified, within --timeout
    std::uint64_t lost = 0;        // no echo within --timeout
    std::uint64_t duplicated = 0;  // a verified echo of a datagram already received
    std::uint64_t reordered = 0;   // received after a higher sequence number of its flow
    std::uint64_t corrupted = 0;   // wrong length, magic, flow, sequence, send time or payload
    std::uint64_t late = 0;        // a verified echo of one already counted lost (stays lost)
    std::uint64_t bytes_sent = 0;
    std::uint64_t bytes_received = 0;  // of the received datagrams
    // Echoes the probe's own socket dropped because its receive buffer was full (the kernel's
    // SO_RXQ_OVFL count, as of the last datagram read): lost, but not by the server.
    std::uint64_t probe_receive_drops = 0;

    void add(const UdpCounters& o) noexcept {
        sent += o.sent;
        received += o.received;
        lost += o.lost;
        duplicated += o.duplicated;
        reordered += o.reordered;
        corrupted += o.corrupted;
        late += o.late;
        bytes_sent += o.bytes_sent;
        bytes_received += o.bytes_received;
        probe_receive_drops += o.probe_receive_drops;
    }
    // Lost as a percentage of sent (0 when nothing was sent).
    [[nodiscard]] double loss_percent() const noexcept {
        return sent == 0 ? 0.0 : 100.0 * static_cast<double>(lost) / static_cast<double>(sent);
    }
};

enum class UdpErrorKind : std::uint8_t {
    Corrupted,       // a damaged or foreign datagram (the first one per flow is reported)
    Loss,            // the run's loss exceeded --max-loss
    Refused,         // ECONNREFUSED: an ICMP port unreachable came back
    Network,         // any other socket error
    MessageTooLong,  // EMSGSIZE: the kernel refused the datagram's size
};
std::string_view to_string(UdpErrorKind kind) noexcept;
// 1 corrupted/loss, 2 message too long (the size asked for cannot be sent), 3 network.
int exit_status_of(UdpErrorKind kind) noexcept;

struct UdpError {
    UdpErrorKind kind;
    std::optional<unsigned> flow;       // none for the run-level loss error
    std::optional<std::uint64_t> seq;   // the datagram, when known
    std::optional<std::uint64_t> offset;  // byte offset in the datagram of the first wrong byte
    std::string detail;                 // one readable sentence
    std::string expected;               // hex around the offset, "[xx]" marks the byte at it
    std::string received;
};

struct UdpFlowResult {
    unsigned id = 0;
    std::string local;  // our address:port, to match server logs
    UdpCounters counters;
    std::optional<UdpError> corruption;  // the first corrupted datagram
    std::optional<UdpError> failure;     // the socket error that stopped the flow
};

struct UdpRunResult {
    std::string peer;  // the address the flows are connected to, e.g. "127.0.0.1:7007"
    double seconds = 0;
    std::vector<UdpFlowResult> flows;
    UdpCounters totals;
    LogLinearHistogram latency_ns;
    bool interrupted = false;
    double max_loss_percent = 0;

    [[nodiscard]] bool loss_exceeded() const noexcept { return totals.loss_percent() > max_loss_percent; }
    // Every error to report, flows in order, then the run-level loss.
    [[nodiscard]] std::vector<UdpError> errors() const;
    // 2 when the kernel refused a datagram size; else 1 on any corruption; else 3 when a
    // flow failed on a socket error (its losses are that error's consequence); else 1 when
    // loss exceeds --max-loss; else 0.
    [[nodiscard]] int exit_status() const noexcept;
};

}  // namespace tcpecho::probe

// One UDP probe flow: a connected UDP socket that sends numbered, verifiable datagrams
// (udp_datagram.hpp), classifies every echo (udp_tracker.hpp) and counts what never came
// back. Driven by a UdpThread's epoll loop (level-triggered EPOLLIN; EPOLLOUT only while a
// send() would block); never blocks.
//
// Why connect(): the socket then receives only datagrams from the server's address, and the
// kernel reports an ICMP port unreachable for it as ECONNREFUSED on the next call, so "no
// server" is an error instead of a run where everything is silently lost.
#pragma once

#include <netdb.h>

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "lib/fd.hpp"
#include "tools/histogram.hpp"
#include "tools/probe_clock.hpp"
#include "tools/probe_options.hpp"
#include "tools/udp_datagram.hpp"
#include "tools/udp_result.hpp"
#include "tools/udp_tracker.hpp"

namespace tcpecho::probe {

// What every flow of one thread shares.
struct UdpContext {
    const Options* options = nullptr;
    std::span<std::byte> send_scratch;  // udp::kMaxDatagram bytes; also builds expected bytes for reports
    std::span<std::byte> recv_scratch;  // udp::kMaxDatagram + 1 bytes
    LogLinearHistogram* latency_ns = nullptr;
    std::string peer;  // "127.0.0.1:7007", for messages
    TimePoint start{};
    std::optional<TimePoint> end;  // --time: no new datagrams from then on
    bool stopping = false;         // interrupted: no new datagrams
};

class UdpFlow {
public:
    UdpFlow(UdpContext& context, unsigned id, std::uint64_t flow_seed);

    // socket() + connect(); a failure fails the flow (network error) and returns false.
    bool open(const addrinfo& address);
    [[nodiscard]] int fd() const noexcept { return fd_.get(); }

    // Reads and classifies what is queued, in a bounded batch (epoll is level-triggered: what
    // is left is reported again).
    void on_readable();
    void on_writable() noexcept { blocked_ = false; }
    // Counts expired datagrams as lost, sends what the workload, --rate and the socket allow
    // (bounded), and finishes the flow when nothing is left to do. Returns true when more
    // could be sent at once (the caller calls again soon).
    bool pump(TimePoint now);
    // A second SIGINT: what is in flight counts as lost, now.
    void abandon();
    // The thread cannot go on (epoll failed).
    void give_up(UdpErrorKind kind, std::string detail);
    // Closes the socket once finished (after the thread removed it from its epoll set).
    void close() noexcept { fd_.reset(); }

    // When pump() next has something to do for a timer: the next paced send or the oldest
    // datagram's loss deadline. TimePoint::max() if nothing.
    [[nodiscard]] TimePoint next_due() const noexcept { return due_; }
    [[nodiscard]] bool wants_writable() const noexcept { return blocked_; }
    [[nodiscard]] bool finished() const noexcept { return state_ != State::Running; }
    [[nodiscard]] const UdpFlowResult& result() const noexcept { return result_; }

private:
    enum class State : std::uint8_t { Running, Done, Failed };

    [[nodiscard]] bool done_sending(TimePoint now) const noexcept;
    [[nodiscard]] bool may_send(TimePoint now) const noexcept;
    [[nodiscard]] TimePoint due_time(std::uint64_t seq) const noexcept;
    [[nodiscard]] std::size_t size_of(std::uint64_t seq) const noexcept;
    [[nodiscard]] udp::DatagramId id_of(std::uint64_t seq) const noexcept { return {id_, flow_seed_, seq}; }
    // The one datagram in flight when it is too short for a header.
    [[nodiscard]] std::optional<std::uint64_t> short_in_flight() const noexcept;
    // The most recent earlier short datagram (not `current`) whose bytes `got` are: a late
    // echo of one counted lost, or a duplicate of the one just before. Searched among the
    // last kShortHistory short ones sent.
    [[nodiscard]] std::optional<std::uint64_t> earlier_short_matching(std::span<const std::byte> got,
                                                                      std::optional<std::uint64_t> current) const noexcept;
    bool try_send(TimePoint now);
    bool read_one();
    void drain();
    void expire(TimePoint now);
    void maybe_finish(TimePoint now);
    void update_due(TimePoint now);

    void on_datagram(std::size_t length, TimePoint now);
    void on_headed(const udp::Header& header, std::span<const std::byte> got, std::size_t length, TimePoint now);
    void on_short(std::span<const std::byte> got, std::size_t length, TimePoint now);
    void on_unattributed(std::span<const std::byte> got, std::size_t length);
    // A verified echo of `seq`: received, duplicated or late, by what the tracker knows.
    void on_verified(std::uint64_t seq, const udp::SeqTracker::Lookup& look, TimePoint now);
    // Counts a corrupted datagram; the first one per flow is described with the bytes around
    // `check.offset`, expected ones from `expected` (empty: not known).
    void corrupted(std::optional<std::uint64_t> seq, const udp::Check& check, std::span<const std::byte> got,
                   std::span<const std::byte> expected, std::string detail);
    void socket_error(int error, const char* call, std::size_t size);
    void fail(UdpErrorKind kind, std::string detail);

    UdpContext& ctx_;
    const Options& opt_;
    const unsigned id_;
    const std::uint64_t flow_seed_;
    const std::uint64_t timeout_ns_;
    UniqueFd fd_;
    udp::SeqTracker tracker_;
    UdpFlowResult result_;
    State state_ = State::Running;
    bool blocked_ = false;  // send() would block: wait for EPOLLOUT
    std::size_t next_size_ = 0;
    TimePoint due_ = TimePoint::max();
    // Sequence numbers of the last short (header-less) datagrams sent, a ring: an echo without
    // a header can only be told by its bytes, and a late one may come after many others were
    // sent (under loss and a short --timeout: seen with -s 1-1400 and 12% loss). Beyond this
    // many, a short echo that matches none of them is reported as corrupted.
    static constexpr std::size_t kShortHistory = 128;
    std::array<std::uint64_t, kShortHistory> recent_short_{};
    std::uint64_t short_sent_ = 0;  // how many were ever put in the ring
};

}  // namespace tcpecho::probe

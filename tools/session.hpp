// One probe connection: sends its message stream, reads and verifies the echo, measures.
// Driven by a ProbeThread's edge-triggered epoll loop; never blocks except in the --recv
// modes that are about blocking reads (waitall, once), and then with SO_RCVTIMEO set.
#pragma once

#include <netdb.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>

#include "lib/fd.hpp"
#include "tools/probe_clock.hpp"
#include "tools/message_stream.hpp"
#include "tools/probe_options.hpp"
#include "tools/probe_result.hpp"

namespace tcpecho::probe {


// What every session of one thread shares: options, scratch buffers, measurements.
struct SessionContext {
    const Options* options = nullptr;
    std::span<std::byte> send_scratch;
    std::span<std::byte> recv_scratch;
    Measurements* measurements = nullptr;
    TimePoint start{};                       // the run's common start
    std::optional<TimePoint> end;            // --time: no new messages from then on
    bool stopping = false;                   // interrupted: no new messages
    // The thread drives this one session only: in ping-pong it can wait for the echo in a
    // blocking recv() (bounded by kSoloWait) instead of epoll_wait + recv, as a minimal
    // blocking client does: one syscall less per message.
    bool solo = false;
};

inline constexpr std::chrono::milliseconds kSoloWait{100};

class Session {
public:
    Session(SessionContext& context, unsigned id, std::uint64_t seed);

    // Blocking connect to the first address that accepts, by `deadline` (the thread's
    // sessions connect one after another against one shared deadline).
    bool connect(const addrinfo* addresses, TimePoint deadline);
    [[nodiscard]] int fd() const noexcept { return fd_.get(); }

    // Edge-triggered readiness from epoll, then pump().
    bool on_events(std::uint32_t events, TimePoint now);
    // Does whatever the socket and the clock allow, in bounded rounds. Returns true when
    // work is left (the caller must call again: the edge will not repeat).
    bool pump(TimePoint now);
    // Fails the session when it has waited for the echo longer than --timeout.
    void check_stall(TimePoint now);
    // A second SIGINT: what is still in flight will not be waited for.
    void abandon();
    // The thread cannot go on (epoll failed): the session fails unless already finished.
    void give_up(FailureKind kind, std::string detail);
    // When pump() next has something to do for a timer; TimePoint::max() if nothing.
    [[nodiscard]] TimePoint next_due() const noexcept { return due_; }

    [[nodiscard]] bool finished() const noexcept { return state_ == State::Done || state_ == State::Failed; }
    [[nodiscard]] const ConnectionResult& result() const noexcept { return result_; }
    // For the progress line: written by this thread only.
    [[nodiscard]] std::uint64_t messages_verified() const noexcept { return result_.messages_verified; }

private:
    enum class State : std::uint8_t { Running, AwaitingEof, Done, Failed };

    [[nodiscard]] bool blocking_mode() const noexcept;
    [[nodiscard]] bool done_sending(TimePoint now) const noexcept;
    [[nodiscard]] TimePoint due_time(std::uint64_t message) const noexcept;
    bool try_send(TimePoint now);
    bool try_read(TimePoint now);
    [[nodiscard]] bool may_start_message(TimePoint now) const noexcept;
    void start_message(TimePoint now);
    [[nodiscard]] std::uint64_t piece_end() const noexcept;
    void process(const std::byte* data, std::size_t n, bool once_call, TimePoint now);
    void complete_message(TimePoint now);
    void maybe_finish(TimePoint now);
    void set_lowat_for_next_read(TimePoint now);
    void fail(FailureKind kind, std::string detail);
    void fail_mismatch(const std::byte* chunk, std::size_t chunk_len, std::size_t at);
    // Hex around the failure offset: expected from the regenerated stream, received from
    // `chunk` (which may be empty; `nothing` then stands for what did not arrive).
    void attach_expected(const std::byte* chunk, std::size_t chunk_len, std::size_t at, const char* nothing = "[EOF]");
    void failure_received(const std::byte* chunk, std::size_t at, std::size_t chunk_len);
    void capture_tcp_info();
    void update_due(TimePoint now);
    [[nodiscard]] std::uint64_t outstanding() const noexcept { return tx_.stream_offset() - rx_.stream_offset(); }

    SessionContext& ctx_;
    const Options& opt_;
    UniqueFd fd_;
    MessageStream tx_;
    MessageStream rx_;
    ConnectionResult result_;
    State state_ = State::Running;

    // Sending side.
    bool writable_ = true;
    bool tx_in_message_ = false;
    bool tx_finished_ = false;  // no more messages will be started
    unsigned piece_ = 0;        // --split: index of the piece being sent
    TimePoint piece_due_{};
    std::uint64_t started_ = 0;  // messages started
    // When each message in flight was started (or was due, with --rate): O(window) entries.
    std::deque<TimePoint> in_flight_;

    // Receiving side.
    bool readable_ = false;  // epoll reports the initial state when the socket is added
    bool peer_rdhup_ = false;
    std::uint32_t calls_this_message_ = 0;
    std::uint32_t lowat_set_ = 0;
    TimePoint last_progress_{};
    TimePoint due_ = TimePoint::max();
};

}  // namespace tcpecho::probe

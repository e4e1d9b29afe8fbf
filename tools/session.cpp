#include "tools/session.hpp"

#include <netinet/in.h>
#include <linux/tcp.h>  // not <netinet/tcp.h>: its struct tcp_info lacks tcpi_rcv_ooopack
#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "lib/address.hpp"
#include "tools/hex_dump.hpp"

namespace tcpecho::probe {

namespace {

timeval to_timeval(std::uint64_t us) noexcept {
    return timeval{static_cast<time_t>(us / 1'000'000), static_cast<suseconds_t>(us % 1'000'000)};
}

std::string seconds_text(std::uint64_t us) {
    char b[32];
    std::snprintf(b, sizeof b, "%g s", static_cast<double>(us) / 1e6);
    return b;
}

constexpr std::size_t kContextBefore = 4;
constexpr std::size_t kContextAfter = 8;
constexpr std::size_t kFirstSizesKept = 8;
// In the non-blocking modes, what is asked for when no echo is due: enough to see what an
// unexpected sender sends.
constexpr std::size_t kUnexpectedReadSize = 4096;

}  // namespace

Session::Session(SessionContext& context, unsigned id, std::uint64_t seed)
    : ctx_(context), opt_(*context.options), tx_(opt_.shape, seed), rx_(opt_.shape, seed) {
    result_.id = id;
}

bool Session::blocking_mode() const noexcept {
    return opt_.recv == RecvMode::WaitAll || opt_.recv == RecvMode::Once;
}

bool Session::connect(const addrinfo* addresses, TimePoint deadline) {
    std::string error = "no usable address";
    for (const addrinfo* ai = addresses; ai != nullptr; ai = ai->ai_next) {
        const auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - Clock::now()).count();
        if (left <= 0) {
            error = "timed out: no connection within " + seconds_text(opt_.timeout_us);
            break;
        }
        sockaddr_storage peer{};
        std::memcpy(&peer, ai->ai_addr, ai->ai_addrlen);
        const std::string where = SocketAddress::from_sockaddr(peer, ai->ai_addrlen).to_string();
        const int raw_fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (int err = sys_error(raw_fd); err != 0) {
            error = "socket(): " + errno_text(err);
            continue;
        }
        UniqueFd fd(raw_fd);
        // connect() honours SO_SNDTIMEO: what is left of the shared connect deadline.
        timeval tv = to_timeval(static_cast<std::uint64_t>(left));
        ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        // The blocking --recv modes also send and receive blocking, bounded by --timeout.
        tv = to_timeval(opt_.timeout_us);
        if (ctx_.solo && !blocking_mode()) {
            // Short, so the thread still does its housekeeping (stalls, progress, SIGINT).
            tv = to_timeval(std::min<std::uint64_t>(opt_.timeout_us, kSoloWait.count() * 1000));
        }
        ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        // Not retried on EINTR: a repeated connect() would report EALREADY or EISCONN.
        if (int err = sys_error(::connect(fd.get(), ai->ai_addr, ai->ai_addrlen)); err != 0) {
            error = where + ": " +
                    (err == EINPROGRESS ? "timed out after " + seconds_text(opt_.timeout_us) : errno_text(err));
            continue;
        }
        timeval send_tv = to_timeval(opt_.timeout_us);
        ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &send_tv, sizeof send_tv);
        // Each message (or --split piece) leaves at once instead of waiting on Nagle.
        int one = 1;
        ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        sockaddr_storage local{};
        socklen_t len = sizeof local;
        if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&local), &len) == 0) {
            result_.local = SocketAddress::from_sockaddr(local, len).to_string();
        }
        fd_ = std::move(fd);
        set_lowat_for_next_read(Clock::now());
        return true;
    }
    fail(FailureKind::Connect, "cannot connect to " + error);
    return false;
}

bool Session::on_events(std::uint32_t events, TimePoint now) {
    if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) != 0) readable_ = true;
    if ((events & (EPOLLHUP | EPOLLRDHUP)) != 0) peer_rdhup_ = true;
    if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) != 0) writable_ = true;
    return pump(now);
}

bool Session::pump(TimePoint now) {
    // Bounded, so one fast connection cannot starve the others of its thread; the thread
    // calls again (ready list) when work is left, since the edge will not repeat.
    constexpr int kRounds = 16;
    bool progress = true;
    for (int round = 0; round < kRounds && progress && !finished(); ++round) {
        progress = try_read(now);
        if (finished()) break;
        progress = try_send(now) || progress;
        if (finished()) break;
        maybe_finish(now);
        set_lowat_for_next_read(now);
    }
    update_due(now);
    return progress && !finished();
}

bool Session::done_sending(TimePoint now) const noexcept {
    if (tx_in_message_) return false;
    if (opt_.count && started_ >= *opt_.count) return true;
    if (ctx_.stopping) return true;
    return ctx_.end && now >= *ctx_.end;
}

TimePoint Session::due_time(std::uint64_t message) const noexcept {
    // Connections are staggered across the interval so that their messages do not leave in
    // bursts: connection i sends message k at start + (k + i / connections) * interval.
    double interval_s = static_cast<double>(opt_.connections) / opt_.rate;
    double at = (static_cast<double>(message) + static_cast<double>(result_.id) / opt_.connections) * interval_s;
    return ctx_.start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(at));
}

bool Session::may_start_message(TimePoint now) const noexcept {
    if (done_sending(now)) return false;
    const std::uint64_t out = outstanding();
    if (opt_.workload == Workload::PingPong) {
        if (out > 0) return false;
    } else if (out > 0 && out + tx_.message_size() > opt_.window) {
        // A whole message at a time: a framed server echoes nothing of a partial frame, so
        // a window cut inside a frame could wait forever.
        return false;
    }
    return opt_.rate <= 0 || now >= due_time(started_);
}

void Session::start_message(TimePoint now) {
    in_flight_.push_back(opt_.rate > 0 ? due_time(started_) : now);
    ++started_;
    tx_in_message_ = true;
    piece_ = 0;
}

std::uint64_t Session::piece_end() const noexcept {
    const std::uint64_t size = tx_.message_size();
    if (opt_.split <= 1) return size;
    // Up to --split pieces: a message shorter than that goes in as many pieces as it has
    // bytes (one byte each; a 0-byte message is one empty piece), never in empty ones.
    const std::uint64_t pieces = std::max<std::uint64_t>(1, std::min<std::uint64_t>(opt_.split, size));
    return size * (piece_ + 1) / pieces;
}

bool Session::try_send(TimePoint now) {
    if (state_ != State::Running || !writable_) return false;
    if (!tx_in_message_) {
        if (!may_start_message(now)) return false;
        // Latency starts now, not when this thread woke up: a message sent and echoed within
        // one wake-up must not measure 0.
        now = Clock::now();
        start_message(now);
    }
    if (piece_ > 0 && now < piece_due_) return false;
    const std::uint64_t pos = tx_.position();
    const std::uint64_t end = piece_end();
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(end - pos, ctx_.send_scratch.size()));
    tx_.fill(ctx_.send_scratch.data(), want);
    IoResult r = send_some(fd_.get(), ctx_.send_scratch.data(), want, blocking_mode() ? 0 : MSG_DONTWAIT);
    ctx_.measurements->send_calls++;
    if (blocking_mode()) now = Clock::now();  // the call may have waited
    if (r.status == IoStatus::WouldBlock) {
        tx_.rewind_to(pos);
        if (blocking_mode()) {
            fail(FailureKind::Timeout, "a send() call blocked for " + seconds_text(opt_.timeout_us) +
                                           ": the server is not reading (or the message does not fit in the socket "
                                           "buffers while its echo is not read; use --recv loop)");
            return false;
        }
        writable_ = false;
        return false;
    }
    if (r.status != IoStatus::Ok) {
        tx_.rewind_to(pos);
        fail(FailureKind::Reset, "send() failed: " + errno_text(r.error));
        return false;
    }
    if (r.bytes < want) {
        tx_.rewind_to(pos + r.bytes);
        if (!blocking_mode()) writable_ = false;
    }
    // Sending is progress too: a framed server echoes nothing until a frame is complete, so
    // the stall clock runs from the last byte sent or received.
    if (r.bytes > 0) last_progress_ = now;
    result_.bytes_sent += r.bytes;
    if (tx_.position() == end) {
        if (tx_.at_end()) {
            tx_in_message_ = false;
            result_.messages_sent++;
            tx_.next_message();
        } else {
            ++piece_;
            piece_due_ = now + std::chrono::microseconds(opt_.split_delay_us);
        }
    }
    return r.bytes > 0;
}

bool Session::try_read(TimePoint now) {
    if (state_ != State::Running && state_ != State::AwaitingEof) return false;
    const std::uint64_t out = outstanding();
    // The blocking modes read a message only once all of it has been sent, like a blocking
    // client: send the message, then recv().
    const bool blocking = blocking_mode() && state_ == State::Running && out > 0 &&
                          tx_.stream_offset() >= rx_.stream_offset() + rx_.remaining();
    // A lone ping-pong session with its message sent has nothing to do but wait for the echo.
    const bool solo_wait = ctx_.solo && !blocking_mode() && opt_.workload == Workload::PingPong &&
                           state_ == State::Running && out > 0 && !tx_in_message_;
    if (!blocking && !solo_wait && (!readable_ || (blocking_mode() && out > 0))) return false;

    std::size_t request = 0;
    int flags = MSG_DONTWAIT;
    if (blocking) {
        request = static_cast<std::size_t>(rx_.remaining());
        flags = opt_.recv == RecvMode::WaitAll ? MSG_WAITALL : 0;
    } else {
        request = out > 0 ? static_cast<std::size_t>(std::min<std::uint64_t>(out, ctx_.recv_scratch.size()))
                          : kUnexpectedReadSize;
        if (solo_wait) flags = 0;  // blocks until data (or SO_RCVLOWAT bytes), at most kSoloWait
    }
    IoResult r = recv_some(fd_.get(), ctx_.recv_scratch.data(), request, flags);
    // When the echo arrived: after a blocking call, that is after the wait; after a
    // non-blocking one, the thread's wake-up time is too early for everything sent since.
    now = Clock::now();
    switch (r.status) {
    case IoStatus::WouldBlock:
        if (blocking) {
            fail(FailureKind::Timeout, "no echo for " + seconds_text(opt_.timeout_us) + ": " +
                                           std::to_string(rx_.position()) + " of " +
                                           std::to_string(rx_.message_size()) + " bytes of message " +
                                           std::to_string(rx_.message_index()) + " are back");
            attach_expected(nullptr, 0, 0, "[nothing]");
            return false;
        }
        readable_ = false;
        if (!solo_wait) ctx_.measurements->recv_eagain++;  // else: kSoloWait passed, back to the loop
        return false;
    case IoStatus::Eof:
        if (state_ == State::AwaitingEof) {
            state_ = State::Done;
            fd_.reset();
        } else if (out > 0) {
            fail(FailureKind::Missing,
                 "the server closed the connection (EOF) with " + std::to_string(out) +
                     " bytes not echoed: message " + std::to_string(rx_.message_index()) + " has " +
                     std::to_string(rx_.position()) + " of its " + std::to_string(rx_.message_size()) + " bytes");
            attach_expected(nullptr, 0, 0);
        } else {
            fail(FailureKind::Missing, "the server closed the connection (EOF) before the run ended, after " +
                                           std::to_string(result_.messages_verified) + " verified messages");
        }
        return false;
    case IoStatus::PeerGone:
    case IoStatus::Error:
    case IoStatus::OutOfFds:  // accept results only
    case IoStatus::Transient:
    case IoStatus::Shed:
        fail(FailureKind::Reset, r.error == ECONNRESET ? "connection reset by the server"
                                                        : "recv() failed: " + errno_text(r.error));
        return false;
    case IoStatus::Ok:
        break;
    }
    process(ctx_.recv_scratch.data(), r.bytes, blocking && opt_.recv == RecvMode::Once, now);
    if (!blocking && !solo_wait && (r.bytes < request || outstanding() == 0) && !peer_rdhup_ && !finished()) {
        // A short read on a stream socket means the receive queue is empty, and when all
        // that was sent is back nothing more is due: the next edge will say when data
        // arrives. Saves an EAGAIN call per message. (Bytes nobody sent, if any, are found
        // with the next echo, or by the read after the final half-close.)
        readable_ = false;
    }
    return true;
}

void Session::process(const std::byte* data, std::size_t n, bool once_call, TimePoint now) {
    Measurements& m = *ctx_.measurements;
    m.recv_calls++;
    m.recv_size.record(n);
    m.recv_size_counts.record(n);
    result_.recv_calls++;
    if (result_.first_recv_sizes.size() < kFirstSizesKept) result_.first_recv_sizes.push_back(n);
    last_progress_ = now;

    if (state_ == State::AwaitingEof) {
        fail(FailureKind::Extra, std::to_string(n) + " extra bytes arrived after every byte sent had been echoed");
        failure_received(data, 0, n);
        return;
    }
    const std::uint64_t expected_message = rx_.message_index();
    const std::uint64_t expected_size = rx_.remaining();
    const std::uint64_t out = outstanding();
    const std::size_t good = static_cast<std::size_t>(std::min<std::uint64_t>(n, out));
    std::size_t done = 0;
    while (done < good) {
        std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(good - done, rx_.remaining()));
        ++calls_this_message_;
        std::size_t ok = rx_.verify(data + done, take);
        result_.bytes_verified += ok;
        if (ok != take) {
            fail_mismatch(data, n, done + ok);
            return;
        }
        done += take;
        if (rx_.at_end()) complete_message(now);
    }
    if (n > out) {
        fail(FailureKind::Extra, "the server sent " + std::to_string(n - out) +
                                     " bytes more than it had been sent (at least)");
        failure_received(data, done, n);
        return;
    }
    if (once_call && n < expected_size) {
        fail(FailureKind::ShortRead,
             "one recv() returned " + std::to_string(n) + " of the " + std::to_string(expected_size) +
                 " bytes of message " + std::to_string(expected_message) +
                 ". TCP is a byte stream: it keeps no message boundaries, and recv() returns whatever has "
                 "arrived so far (how much depends on segment sizes, the receive window and timing: see "
                 "tcp_info). A client that reads once per message now takes the rest of message " +
                 std::to_string(expected_message) + " for the start of message " +
                 std::to_string(expected_message + 1) + " and every later message is misaligned. Read until the "
                 "message is complete (--recv loop or waitall).");
    }
}

void Session::complete_message(TimePoint now) {
    Measurements& m = *ctx_.measurements;
    TimePoint sent = in_flight_.front();
    in_flight_.pop_front();
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now - sent).count();
    m.latency_ns.record(ns > 0 ? static_cast<std::uint64_t>(ns) : 0);
    m.recv_calls_per_message.record(calls_this_message_);
    calls_this_message_ = 0;
    result_.messages_verified++;
    rx_.next_message();
}

void Session::maybe_finish(TimePoint now) {
    if (state_ != State::Running || !done_sending(now) || outstanding() > 0) return;
    capture_tcp_info();
    if (int err = sys_error(::shutdown(fd_.get(), SHUT_WR)); err != 0) {
        fail(FailureKind::Reset, "shutdown(SHUT_WR) failed: " + errno_text(err));
        return;
    }
    // Everything is back; now the server must close its side too (RFC 862 echoes until EOF).
    state_ = State::AwaitingEof;
    last_progress_ = now;
    readable_ = true;
}

void Session::set_lowat_for_next_read(TimePoint now) {
    if (opt_.recv != RecvMode::LowAt || state_ != State::Running) return;
    const std::uint64_t out = outstanding();
    // Keep the mark while more bytes are coming without waiting for an echo (the rest of a
    // message, or the next one in a stream with room in its window); otherwise never ask
    // for more than is still due, or the kernel would wait forever for it. Lowered only when
    // the current mark has become unreachable, so a trickling echo costs no setsockopt each.
    const bool more_coming = tx_in_message_ || (opt_.workload == Workload::Stream && may_start_message(now));
    std::uint32_t want = lowat_set_;
    if (more_coming || out == 0) {
        want = opt_.lowat;
    } else if (lowat_set_ > out) {
        want = static_cast<std::uint32_t>(std::min<std::uint64_t>(opt_.lowat, out));
    }
    if (want == lowat_set_) return;
    int value = static_cast<int>(want);
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVLOWAT, &value, sizeof value);
    ctx_.measurements->lowat_changes++;
    // Lowering the mark needs no extra read: the kernel signals EPOLLIN itself when what is
    // queued already meets the new mark (tcp_set_rcvlowat() calls tcp_data_ready(), since 4.19).
    lowat_set_ = want;
}

void Session::check_stall(TimePoint now) {
    const bool waiting = (state_ == State::Running && outstanding() > 0) || state_ == State::AwaitingEof;
    if (!waiting || now - last_progress_ < std::chrono::microseconds(opt_.timeout_us)) return;
    if (state_ == State::AwaitingEof) {
        fail(FailureKind::Timeout, "every byte came back, but the server did not close the connection within " +
                                       seconds_text(opt_.timeout_us) + " of our half-close");
    } else {
        fail(FailureKind::Timeout, "no echo for " + seconds_text(opt_.timeout_us) + ": " +
                                       std::to_string(outstanding()) + " bytes sent are not back; message " +
                                       std::to_string(rx_.message_index()) + " has " +
                                       std::to_string(rx_.position()) + " of its " +
                                       std::to_string(rx_.message_size()) + " bytes");
        attach_expected(nullptr, 0, 0, "[nothing]");
    }
}

void Session::give_up(FailureKind kind, std::string detail) {
    if (!finished()) fail(kind, std::move(detail));
}

void Session::abandon() {
    const std::uint64_t out = outstanding();
    give_up(FailureKind::Timeout, "interrupted twice: gave up waiting" +
                                   (out > 0 ? " for " + std::to_string(out) + " bytes of echo"
                                            : std::string(" for the server to close after our half-close")));
}

void Session::update_due(TimePoint now) {
    due_ = TimePoint::max();
    if (state_ != State::Running) return;
    if (tx_in_message_ && piece_ > 0 && piece_due_ > now) {
        due_ = piece_due_;
    } else if (!tx_in_message_ && opt_.rate > 0 && !done_sending(now)) {
        TimePoint next = due_time(started_);
        if (next > now) due_ = next;
    }
}

void Session::capture_tcp_info() {
    if (!fd_ || result_.tcp_info.valid) return;
    tcp_info info{};
    socklen_t len = sizeof info;
    if (::getsockopt(fd_.get(), IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return;
    TcpInfo& t = result_.tcp_info;
    t.valid = true;
    t.snd_mss = info.tcpi_snd_mss;
    t.rcv_mss = info.tcpi_rcv_mss;
    t.advmss = info.tcpi_advmss;
    t.rtt_us = info.tcpi_rtt;
    t.rttvar_us = info.tcpi_rttvar;
    t.snd_cwnd = info.tcpi_snd_cwnd;
    t.total_retrans = info.tcpi_total_retrans;
    t.reordering = info.tcpi_reordering;
    t.rcv_space = info.tcpi_rcv_space;
    t.rcv_ooopack = info.tcpi_rcv_ooopack;
}

void Session::fail(FailureKind kind, std::string detail) {
    if (state_ == State::Failed) return;
    capture_tcp_info();
    state_ = State::Failed;
    result_.failure = Failure{kind, result_.id, rx_.message_index(), rx_.stream_offset(), std::move(detail), {}, {}};
    fd_.reset();
}

void Session::fail_mismatch(const std::byte* chunk, std::size_t chunk_len, std::size_t at) {
    const std::uint64_t pos = rx_.position();
    const std::uint64_t size = rx_.message_size();
    char detail[160];
    std::snprintf(detail, sizeof detail, "byte mismatch at byte %llu of the %llu bytes of message %llu",
                  static_cast<unsigned long long>(pos), static_cast<unsigned long long>(size),
                  static_cast<unsigned long long>(rx_.message_index()));
    fail(FailureKind::Mismatch, detail);
    attach_expected(chunk, chunk_len, at);
}

void Session::attach_expected(const std::byte* chunk, std::size_t chunk_len, std::size_t at, const char* nothing) {
    // The bytes before the offset matched, so they are both what was expected and received.
    std::size_t before = std::min(at, kContextBefore);
    MessageStream expect = rx_;  // stands at the offset
    std::byte want[kContextAfter];
    std::size_t want_len = static_cast<std::size_t>(std::min<std::uint64_t>(kContextAfter, expect.remaining()));
    expect.fill(want, want_len);
    Failure& f = *result_.failure;
    f.expected = hex_window(chunk + at - before, before, want, want_len);
    std::size_t got_len = std::min(chunk_len - at, kContextAfter);
    f.received = hex_window(chunk + at - before, before, chunk + at, got_len, nothing);
}

void Session::failure_received(const std::byte* chunk, std::size_t at, std::size_t chunk_len) {
    Failure& f = *result_.failure;
    f.expected = "[EOF]";
    f.received = hex_window(chunk, 0, chunk + at, std::min(chunk_len - at, kContextAfter));
}

}  // namespace tcpecho::probe

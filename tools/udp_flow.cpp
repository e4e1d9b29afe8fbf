#include "tools/udp_flow.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "lib/address.hpp"
#include "tools/hex_dump.hpp"

namespace tcpecho::probe {

namespace {

using udp::Check;
using udp::Defect;
using udp::kHeaderSize;
using udp::SeqTracker;
using Lookup = SeqTracker::Lookup;

// Per pump()/on_readable(): enough to amortise the loop, small enough that one busy flow
// cannot starve the others of its thread.
constexpr int kSendBatch = 64;
constexpr int kReadBatch = 64;
// What a flow reads after its last echo, for duplicates of it already queued.
constexpr int kDrainBatch = 256;
// The receive buffer asked for in the stream workload, where a window of datagrams comes
// back at once (the kernel caps it at net.core.rmem_max): a probe that drops echoes itself
// would blame the server for the loss.
constexpr int kStreamRcvBuf = 4 << 20;

constexpr std::size_t kContextBefore = 4;
constexpr std::size_t kContextAfter = 8;

std::string plural(std::uint64_t n, const char* one, const char* many) {
    return std::to_string(n) + " " + (n == 1 ? one : many);
}

}  // namespace

UdpFlow::UdpFlow(UdpContext& context, unsigned id, std::uint64_t flow_seed)
    : ctx_(context),
      opt_(*context.options),
      id_(id),
      flow_seed_(flow_seed),
      timeout_ns_(opt_.timeout_us * 1000) {
    result_.id = id;
    next_size_ = size_of(0);
}

bool UdpFlow::open(const addrinfo& address) {
    const int raw_fd = ::socket(address.ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
    if (int err = sys_error(raw_fd); err != 0) {
        fail(UdpErrorKind::Network, "socket(): " + errno_text(err));
        return false;
    }
    UniqueFd fd(raw_fd);
    if (opt_.workload == Workload::Stream) {
        int want = kStreamRcvBuf;
        ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &want, sizeof want);  // best effort
    }
    // The kernel then tells, with each datagram read, how many it dropped on this socket for
    // want of buffer space: loss the probe must not blame on the server.
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);
    if (int err = sys_error(::connect(fd.get(), address.ai_addr, address.ai_addrlen)); err != 0) {
        fail(UdpErrorKind::Network, "cannot connect a UDP socket to " + ctx_.peer + ": " + errno_text(err));
        return false;
    }
    if (auto local = SocketAddress::local_of(fd.get())) result_.local = local->to_string();
    fd_ = std::move(fd);
    return true;
}

std::size_t UdpFlow::size_of(std::uint64_t seq) const noexcept {
    return udp::datagram_size(opt_.shape.size_min, opt_.shape.size_max, flow_seed_, seq);
}

bool UdpFlow::done_sending(TimePoint now) const noexcept {
    if (opt_.count && tracker_.next_seq() >= *opt_.count) return true;
    if (ctx_.stopping) return true;
    return ctx_.end && now >= *ctx_.end;
}

TimePoint UdpFlow::due_time(std::uint64_t seq) const noexcept {
    // As for TCP: flows are staggered across the interval so they do not send in bursts;
    // flow i sends datagram k at start + (k + i / flows) * flows / rate.
    const double interval_s = static_cast<double>(opt_.connections) / opt_.rate;
    const double at = (static_cast<double>(seq) + static_cast<double>(id_) / opt_.connections) * interval_s;
    return ctx_.start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(at));
}

std::optional<std::uint64_t> UdpFlow::short_in_flight() const noexcept {
    if (tracker_.in_flight() != 1) return std::nullopt;
    const std::uint64_t seq = *tracker_.oldest_in_flight();
    if (tracker_.lookup(seq).size >= kHeaderSize) return std::nullopt;
    return seq;
}

bool UdpFlow::may_send(TimePoint now) const noexcept {
    if (state_ != State::Running || blocked_ || done_sending(now)) return false;
    if (tracker_.in_flight() > 0) {
        // A datagram without a header can only be told apart from others by being alone.
        if (next_size_ < kHeaderSize || short_in_flight()) return false;
        if (opt_.workload == Workload::PingPong) return false;
        if (tracker_.in_flight_bytes() + next_size_ > opt_.window) return false;
    }
    return opt_.rate <= 0 || now >= due_time(tracker_.next_seq());
}

bool UdpFlow::pump(TimePoint now) {
    if (finished()) return false;
    expire(now);
    const bool more = try_send(now);
    maybe_finish(now);
    update_due(now);
    return more && !finished();
}

void UdpFlow::expire(TimePoint now) {
    const std::uint64_t now_ns = to_ns(now);
    if (now_ns < timeout_ns_) return;
    result_.counters.lost += tracker_.expire(now_ns - timeout_ns_);
}

bool UdpFlow::try_send(TimePoint now) {
    for (int i = 0; i < kSendBatch; ++i) {
        if (!may_send(now)) return false;
        const std::uint64_t seq = tracker_.next_seq();
        const std::size_t size = next_size_;
        // The send time is taken now, not at the thread's wake-up, so that a datagram sent
        // and echoed within one wake-up does not measure 0.
        now = Clock::now();
        const std::uint64_t send_ns = to_ns(now);
        udp::fill_datagram(ctx_.send_scratch.data(), size, id_of(seq), send_ns);
        IoResult r = send_some(fd_.get(), ctx_.send_scratch.data(), size, MSG_DONTWAIT);
        if (r.status == IoStatus::WouldBlock) {
            blocked_ = true;
            return false;
        }
        if (r.status != IoStatus::Ok) {
            socket_error(r.error, "send()", size);
            return false;
        }
        tracker_.on_sent(send_ns, static_cast<std::uint32_t>(size));
        if (size < kHeaderSize) recent_short_[short_sent_++ % kShortHistory] = seq;
        result_.counters.sent++;
        result_.counters.bytes_sent += size;
        next_size_ = size_of(seq + 1);
    }
    return true;
}

void UdpFlow::on_readable() {
    for (int i = 0; i < kReadBatch; ++i) {
        if (!read_one()) return;
        // Level-triggered: with nothing in flight no echo is due, and a stray datagram still
        // queued is reported again. Saves an EAGAIN call per ping-pong round trip.
        if (tracker_.in_flight() == 0) return;
    }
}

bool UdpFlow::read_one() {
    if (!fd_ || state_ == State::Failed) return false;
    iovec iov{ctx_.recv_scratch.data(), ctx_.recv_scratch.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(std::uint32_t))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    // MSG_TRUNC: the datagram's real length, even if it did not fit (it cannot here: the
    // buffer holds the largest UDP payload, plus one byte). 0 is a 0-byte datagram.
    const IoResult r = recv_message(fd_.get(), &msg, MSG_DONTWAIT | MSG_TRUNC);
    if (r.status != IoStatus::Ok) {
        if (r.status != IoStatus::WouldBlock) socket_error(r.error, "recvmsg()", 0);
        return false;
    }
    const TimePoint now = Clock::now();
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
            std::uint32_t dropped = 0;
            std::memcpy(&dropped, CMSG_DATA(c), sizeof dropped);
            result_.counters.probe_receive_drops = dropped;  // the socket's running total
        }
    }
    on_datagram(r.bytes, now);
    return state_ != State::Failed;
}

void UdpFlow::drain() {
    for (int i = 0; i < kDrainBatch && read_one(); ++i) {
    }
}

void UdpFlow::maybe_finish(TimePoint now) {
    if (state_ != State::Running || tracker_.in_flight() > 0 || !done_sending(now)) return;
    // Echoes already queued behind the last one (a duplicate of it, say) still count.
    drain();
    if (state_ == State::Running) state_ = State::Done;
}

void UdpFlow::update_due(TimePoint now) {
    due_ = TimePoint::max();
    if (state_ != State::Running) return;
    if (auto oldest = tracker_.oldest_in_flight()) {
        // One nanosecond past the deadline: expire() counts what is at or before now - timeout.
        due_ = from_ns(tracker_.send_ns_of(*oldest) + timeout_ns_ + 1);
    }
    if (opt_.rate > 0 && !blocked_ && !done_sending(now)) {
        const TimePoint next = due_time(tracker_.next_seq());
        if (next > now) due_ = std::min(due_, next);
    }
    if (ctx_.end && !done_sending(now)) due_ = std::min(due_, *ctx_.end);
}

void UdpFlow::on_datagram(std::size_t length, TimePoint now) {
    const std::span<const std::byte> got(ctx_.recv_scratch.data(), std::min(length, ctx_.recv_scratch.size()));
    if (length >= kHeaderSize) {
        const udp::Header h = udp::decode_header(got.data());
        if (h.magic == udp::kMagic && h.flow == id_) {
            on_headed(h, got, length, now);
            return;
        }
    }
    if (opt_.shape.size_min < kHeaderSize) {
        on_short(got, length, now);
    } else {
        on_unattributed(got, length);
    }
}

void UdpFlow::on_headed(const udp::Header& header, std::span<const std::byte> got, std::size_t length,
                        TimePoint now) {
    const std::uint64_t seq = header.seq;
    const Lookup look = tracker_.lookup(seq);
    if (look.kind == Lookup::Kind::NeverSent) {
        const std::uint64_t sent = tracker_.next_seq();
        std::string what = "a datagram naming sequence number " + std::to_string(seq) +
                           ", which this flow never sent (" +
                           (sent == 0 ? std::string("it sent none yet") : "it sent 0.." + std::to_string(sent - 1)) +
                           ")";
        Check check{Defect::Seq, udp::kSeqOffset};
        std::span<const std::byte> expected;
        if (auto oldest = tracker_.oldest_in_flight()) {
            // Most likely a damaged echo of the oldest datagram in flight (in ping-pong, the
            // only one): show where it differs from that. Not attributed to it, though: that
            // one still counts as lost unless its echo comes.
            const Lookup in_flight = tracker_.lookup(*oldest);
            const Check against = udp::check_datagram(got, in_flight.size, id_of(*oldest), in_flight.send_ns);
            if (against.defect == Defect::Seq) {
                check = against;
                std::span<std::byte> bytes = ctx_.send_scratch.first(in_flight.size);
                udp::fill_datagram(bytes.data(), in_flight.size, id_of(*oldest), in_flight.send_ns);
                expected = bytes;
                what += "; compared with datagram " + std::to_string(*oldest) + ", in flight";
            }
        }
        corrupted(std::nullopt, check, got, expected, std::move(what));
        return;
    }
    const bool known = look.kind == Lookup::Kind::Known;
    const std::size_t size = known ? look.size : size_of(seq);
    const std::optional<std::uint64_t> send_ns = known ? std::optional(look.send_ns) : std::nullopt;
    const Check check = udp::check_datagram(got, size, id_of(seq), send_ns);
    if (check.defect == Defect::None) {
        on_verified(seq, look, now);
        return;
    }
    // The header names the datagram: its echo came back, damaged. It is not waited for any
    // longer (so it is not also counted lost).
    if (known && look.state == SeqTracker::State::InFlight) tracker_.on_corrupted(seq);
    std::span<std::byte> expected = ctx_.send_scratch.first(size);
    udp::fill_datagram(expected.data(), size, id_of(seq), send_ns ? *send_ns : header.send_ns);
    std::string what;
    if (check.defect == Defect::Length) {
        what = "the echo has " + plural(length, "byte", "bytes") + ", the datagram " + std::to_string(size) +
               " (the bytes present match)";
    } else {
        what = "byte " + std::to_string(check.offset) + " of the " + std::to_string(size) + "-byte datagram differs (" +
               std::string(udp::to_string(check.defect)) + ")";
        if (length != size) what += "; the echo also has " + plural(length, "byte", "bytes");
    }
    corrupted(seq, check, got, expected, std::move(what));
}

void UdpFlow::on_verified(std::uint64_t seq, const Lookup& look, TimePoint now) {
    UdpCounters& c = result_.counters;
    switch (look.state) {
    case SeqTracker::State::InFlight: {
        const std::int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now - from_ns(look.send_ns)).count();
        ctx_.latency_ns->record(ns > 0 ? static_cast<std::uint64_t>(ns) : 0);
        c.received++;
        c.bytes_received += look.size;
        if (tracker_.on_received(seq)) c.reordered++;
        break;
    }
    case SeqTracker::State::Received:
    case SeqTracker::State::Corrupted:
        c.duplicated++;
        break;
    case SeqTracker::State::Lost:
        c.late++;
        break;
    }
}

void UdpFlow::on_short(std::span<const std::byte> got, std::size_t length, TimePoint now) {
    // No header: the echo is matched by its bytes, first to the datagram in flight (a short
    // one is always alone), else to an earlier short one, which makes a late or duplicated
    // echo of it. Only then is it corrupted: a damaged echo of the one in flight, or, with
    // nothing short in flight, a datagram that is no echo of this flow at all.
    const std::optional<std::uint64_t> current = short_in_flight();
    Check against_current;
    if (current) {
        against_current = udp::check_datagram(got, size_of(*current), id_of(*current), std::nullopt);
        if (against_current.defect == Defect::None) {
            on_verified(*current, tracker_.lookup(*current), now);
            return;
        }
    }
    if (const std::optional<std::uint64_t> earlier = earlier_short_matching(got, current)) {
        on_verified(*earlier, tracker_.lookup(*earlier), now);
        return;
    }
    if (!current) {
        on_unattributed(got, length);
        return;
    }
    tracker_.on_corrupted(*current);
    const std::size_t size = size_of(*current);
    std::span<std::byte> expected = ctx_.send_scratch.first(size);
    udp::fill_datagram(expected.data(), size, id_of(*current), 0);
    std::string what = against_current.defect == Defect::Length
                           ? "the echo has " + plural(length, "byte", "bytes") + ", the datagram " +
                                 std::to_string(size) + " (the bytes present match)"
                           : "byte " + std::to_string(against_current.offset) + " of the " + std::to_string(size) +
                                 "-byte datagram (too short for a header) differs";
    corrupted(current, against_current, got, expected, std::move(what));
}

std::optional<std::uint64_t> UdpFlow::earlier_short_matching(std::span<const std::byte> got,
                                                              std::optional<std::uint64_t> current) const noexcept {
    const std::uint64_t kept = std::min<std::uint64_t>(short_sent_, kShortHistory);
    // Which earlier ones may have an echo still coming: the one just before (a duplicate of
    // it), and any counted lost (a late echo). Not every one received: with 1-byte datagrams
    // one in 256 would match a damaged echo by chance, and a damaged echo must stay corrupted.
    const std::uint64_t previous = (current ? *current : tracker_.next_seq()) - 1;
    for (std::uint64_t k = 1; k <= kept; ++k) {  // newest first
        const std::uint64_t seq = recent_short_[(short_sent_ - k) % kShortHistory];
        if (current && seq == *current) continue;
        if (seq != previous && tracker_.lookup(seq).state != udp::SeqTracker::State::Lost) continue;
        // Its own size, as sent: an echo of another length is not a copy of it.
        if (size_of(seq) != got.size()) continue;
        if (udp::check_datagram(got, got.size(), id_of(seq), std::nullopt).defect == Defect::None) return seq;
    }
    return std::nullopt;
}

void UdpFlow::on_unattributed(std::span<const std::byte> got, std::size_t length) {
    // Not an echo of anything this flow sent: its original (if any) will count as lost.
    std::byte header[kHeaderSize];
    udp::encode_header(udp::Header{udp::kMagic, id_, 0, 0}, header);
    if (length < kHeaderSize) {
        corrupted(std::nullopt, Check{Defect::Length, length}, got, {},
                  "a " + plural(length, "byte", "bytes") + " datagram that is no echo of this flow: shorter than the " +
                      std::to_string(kHeaderSize) + "-byte header its datagrams carry");
        return;
    }
    const udp::Header h = udp::decode_header(got.data());
    std::size_t at = 0;
    while (at < udp::kSeqOffset && got[at] == header[at]) ++at;
    if (at < udp::kFlowOffset) {
        corrupted(std::nullopt, Check{Defect::Magic, at}, got, std::span(header, udp::kSeqOffset),
                  "a " + std::to_string(length) + "-byte datagram with a bad magic: not a probe datagram");
    } else {
        corrupted(std::nullopt, Check{Defect::Flow, at}, got, std::span(header, udp::kSeqOffset),
                  "a " + std::to_string(length) + "-byte datagram of flow " + std::to_string(h.flow) +
                      " arrived on flow " + std::to_string(id_));
    }
}

void UdpFlow::corrupted(std::optional<std::uint64_t> seq, const Check& check, std::span<const std::byte> got,
                        std::span<const std::byte> expected, std::string detail) {
    result_.counters.corrupted++;
    if (result_.corruption) return;  // the first one per flow is described
    UdpError e{UdpErrorKind::Corrupted, id_, seq, check.offset, std::move(detail), {}, {}};
    // The bytes before the offset match, so they stand in both dumps.
    const std::size_t at = std::min(check.offset, got.size());
    const std::size_t before = std::min(at, kContextBefore);
    if (!expected.empty() && at <= expected.size()) {
        e.expected = hex_window(got.data() + at - before, before, expected.data() + at,
                                std::min(expected.size() - at, kContextAfter), "[end]");
    }
    e.received = hex_window(got.data() + at - before, before, got.data() + at, std::min(got.size() - at, kContextAfter),
                            "[end]");
    result_.corruption = std::move(e);
}

void UdpFlow::socket_error(int error, const char* call, std::size_t size) {
    if (error == ECONNREFUSED) {
        fail(UdpErrorKind::Refused, result_.counters.received > 0
                                        ? "the UDP echo server at " + ctx_.peer +
                                              " stopped answering (connection refused: ICMP port unreachable)"
                                        : "no UDP echo server at " + ctx_.peer + " (connection refused)");
    } else if (error == EMSGSIZE) {
        fail(UdpErrorKind::MessageTooLong,
             "the kernel refused a " + std::to_string(size) + "-byte datagram to " + ctx_.peer + ": " +
                 errno_text(error) + " (the largest UDP payload is " + std::to_string(udp::kMaxIpv4Payload) +
                 " bytes over IPv4, " + std::to_string(udp::kMaxIpv6Payload) + " over IPv6)");
    } else {
        fail(UdpErrorKind::Network, std::string(call) + " failed: " + errno_text(error));
    }
}

void UdpFlow::fail(UdpErrorKind kind, std::string detail) {
    if (state_ == State::Failed) return;
    // What is in flight will not be waited for: it counts as lost, so sent still adds up.
    result_.counters.lost += tracker_.abandon();
    state_ = State::Failed;
    due_ = TimePoint::max();
    result_.failure = UdpError{kind, id_, std::nullopt, std::nullopt, std::move(detail), {}, {}};
}

void UdpFlow::give_up(UdpErrorKind kind, std::string detail) {
    if (!finished()) fail(kind, std::move(detail));
}

void UdpFlow::abandon() {
    if (finished()) return;
    result_.counters.lost += tracker_.abandon();
    state_ = State::Done;
    due_ = TimePoint::max();
}

}  // namespace tcpecho::probe

#include "tools/udp_engine.hpp"

#include <netdb.h>
#include <sys/epoll.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include "lib/address.hpp"
#include "lib/fd.hpp"
#include "tools/probe_loop.hpp"
#include "tools/run_threads.hpp"
#include "tools/udp_flow.hpp"

namespace tcpecho::probe {

namespace {

// How often live figures are published for the progress line.
constexpr auto kHousekeeping = std::chrono::milliseconds(100);

// One thread's flows and their loop. Owned through unique_ptr: flows keep a reference to
// `context_`.
class UdpThread {
public:
    UdpThread(const Options& options, std::string peer, const std::vector<unsigned>& ids) {
        context_.options = &options;
        context_.peer = std::move(peer);
        // Not zero-filled: a thread of small datagrams never touches most of these pages.
        send_buffer_ = std::make_unique_for_overwrite<std::byte[]>(udp::kMaxDatagram);
        recv_buffer_ = std::make_unique_for_overwrite<std::byte[]>(udp::kMaxDatagram + 1);
        context_.send_scratch = {send_buffer_.get(), udp::kMaxDatagram};
        context_.recv_scratch = {recv_buffer_.get(), udp::kMaxDatagram + 1};
        context_.latency_ns = &latency_ns_;
        for (unsigned id : ids) {
            flows_.push_back(std::make_unique<UdpFlow>(context_, id, connection_seed(options.seed, id)));
        }
    }

    void open_all(const addrinfo& address) {
        for (auto& f : flows_) f->open(address);
    }

    void run(TimePoint start, std::optional<TimePoint> end);

    std::atomic<std::uint64_t> received{0};
    std::atomic<std::uint64_t> bytes{0};
    std::atomic<std::uint64_t> lost{0};
    std::atomic<unsigned> failed{0};
    std::atomic<bool> done{false};
    TimePoint finished_at{};  // written before `done`

    [[nodiscard]] const std::vector<std::unique_ptr<UdpFlow>>& flows() const noexcept { return flows_; }
    [[nodiscard]] const LogLinearHistogram& latency_ns() const noexcept { return latency_ns_; }

private:
    void publish() noexcept;
    void finish() noexcept {
        publish();
        finished_at = Clock::now();
        done.store(true, std::memory_order_release);
    }

    UdpContext context_;
    LogLinearHistogram latency_ns_;
    std::unique_ptr<std::byte[]> send_buffer_;
    std::unique_ptr<std::byte[]> recv_buffer_;
    std::vector<std::unique_ptr<UdpFlow>> flows_;
};

void UdpThread::publish() noexcept {
    std::uint64_t r = 0;
    std::uint64_t b = 0;
    std::uint64_t l = 0;
    unsigned f = 0;
    for (const auto& flow : flows_) {
        const UdpFlowResult& res = flow->result();
        r += res.counters.received;
        b += res.counters.bytes_received;
        l += res.counters.lost;
        if (res.failure || res.corruption) ++f;
    }
    received.store(r, std::memory_order_relaxed);
    bytes.store(b, std::memory_order_relaxed);
    lost.store(l, std::memory_order_relaxed);
    failed.store(f, std::memory_order_relaxed);
}

void UdpThread::run(TimePoint start, std::optional<TimePoint> end) {
    context_.start = start;
    context_.end = end;
    const std::size_t n = flows_.size();
    // A loop that cannot run must fail its flows: unfinished is never "verified".
    auto give_up_all = [&](const std::string& what, int error) {
        const std::string detail = "probe error: " + what + ": " + errno_text(error);
        for (auto& f : flows_) f->give_up(UdpErrorKind::Network, detail);
    };
    ProbeLoop loop;
    if (int err = loop.open(n); err != 0) {
        give_up_all("epoll_create1", err);
        finish();
        return;
    }

    std::vector<char> watching_out(n, 0);
    // A finished flow leaves the epoll set before its socket is closed.
    auto settle = [&](std::uint32_t i) {
        UdpFlow& f = *flows_[i];
        if (!f.finished() || !loop.count_finished(i)) return;
        if (f.fd() >= 0) {
            loop.unwatch(f.fd());
            f.close();
        }
    };
    auto after_pump = [&](std::uint32_t i, bool more) {
        UdpFlow& f = *flows_[i];
        settle(i);
        if (f.finished()) return;
        // EPOLLOUT only while a send() would block (rare for UDP): level-triggered, it would
        // otherwise report a writable socket on every wait.
        if ((f.wants_writable() ? 1 : 0) != watching_out[i]) {
            watching_out[i] = f.wants_writable() ? 1 : 0;
            if (int err = loop.rewatch(f.fd(), i, EPOLLIN | (f.wants_writable() ? EPOLLOUT : 0U)); err != 0) {
                f.give_up(UdpErrorKind::Network, "probe error: epoll_ctl: " + errno_text(err));
                settle(i);
                return;
            }
        }
        if (more) loop.mark_ready(i);
        // Only an earlier due time is queued: a later one (the oldest datagram's deadline
        // moves on with every echo) is found when the queued timer fires and pump() runs,
        // so the heap holds about one entry per flow instead of one per datagram.
        loop.advance_timer(i, f.next_due());
    };
    auto pump = [&](std::uint32_t i, TimePoint now) {
        if (flows_[i]->finished()) {
            settle(i);  // e.g. failed while reading
        } else {
            after_pump(i, flows_[i]->pump(now));
        }
    };
    auto pump_all = [&](TimePoint now) {
        for (std::uint32_t i = 0; i < n; ++i) pump(i, now);
    };

    for (std::uint32_t i = 0; i < n; ++i) {
        settle(i);  // could not open its socket
        if (flows_[i]->finished()) continue;
        if (int err = loop.watch(flows_[i]->fd(), i, EPOLLIN); err != 0) {
            flows_[i]->give_up(UdpErrorKind::Network, "probe error: epoll_ctl: " + errno_text(err));
            settle(i);
        }
    }
    pump_all(Clock::now());

    bool stopping = false;
    TimePoint next_housekeeping = Clock::now() + kHousekeeping;
    while (loop.active() > 0) {
        const ProbeLoop::Wait waited = loop.wait(next_housekeeping);
        if (waited.error != 0) {
            give_up_all("epoll_wait", waited.error);
            break;
        }
        const TimePoint now = Clock::now();

        const int interrupts = g_interrupts.load(std::memory_order_relaxed);
        if (interrupts >= 2) {
            for (std::uint32_t i = 0; i < n; ++i) {
                flows_[i]->abandon();
                settle(i);
            }
            break;
        }
        if (!stopping && interrupts >= 1) {
            // Stop sending; each flow finishes when what is in flight is back or lost.
            stopping = true;
            context_.stopping = true;
            pump_all(now);
        }
        for (const epoll_event& event : waited.events) {
            const std::uint32_t i = event.data.u32;
            UdpFlow& f = *flows_[i];
            if (f.finished()) continue;
            // EPOLLERR: an ICMP error is pending; recv() reports it.
            if ((event.events & (EPOLLIN | EPOLLERR)) != 0) f.on_readable();
            if ((event.events & EPOLLOUT) != 0) f.on_writable();
            pump(i, now);
        }
        for (std::uint32_t i : loop.take_ready()) pump(i, now);
        while (auto i = loop.pop_expired(now)) pump(*i, now);
        if (now >= next_housekeeping) {
            publish();
            next_housekeeping = now + kHousekeeping;
        }
    }
    finish();
}

UdpRunResult failed_before_start(const Options& options, const std::string& detail) {
    UdpRunResult result;
    result.peer = options.host + ":" + options.port;
    result.max_loss_percent = options.max_loss_percent;
    for (unsigned id = 0; id < options.connections; ++id) {
        UdpFlowResult f;
        f.id = id;
        f.failure = UdpError{UdpErrorKind::Network, id, std::nullopt, std::nullopt, detail, {}, {}};
        result.flows.push_back(std::move(f));
    }
    return result;
}

}  // namespace

UdpRunResult run_udp_probe(const Options& options, const std::function<void(const Progress&)>& on_progress) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_protocol = IPPROTO_UDP;
    addrinfo* addresses = nullptr;
    const int rc = ::getaddrinfo(options.host.c_str(), options.port.c_str(), &hints, &addresses);
    if (rc != 0) {
        return failed_before_start(options, "cannot resolve " + options.host + " port " + options.port + ": " +
                                                ::gai_strerror(rc));
    }
    std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owned(addresses, &::freeaddrinfo);

    // The first address only: connect() on a UDP socket sends nothing, so there is no
    // failure to fall back on; a name resolving to several addresses uses the first.
    UdpRunResult result;
    result.max_loss_percent = options.max_loss_percent;
    sockaddr_storage first{};
    std::memcpy(&first, addresses->ai_addr, addresses->ai_addrlen);
    result.peer = SocketAddress::from_sockaddr(first, addresses->ai_addrlen).to_string();

    std::vector<std::unique_ptr<UdpThread>> threads;
    for (unsigned t = 0; t < options.threads; ++t) {
        std::vector<unsigned> ids;
        for (unsigned id = t; id < options.connections; id += options.threads) ids.push_back(id);
        threads.push_back(std::make_unique<UdpThread>(options, result.peer, ids));
    }

    result.seconds = run_threads(
        options, threads, [&](UdpThread& t) { t.open_all(*addresses); },
        [](const UdpThread& t, Progress& p) {
            p.messages_verified += t.received.load(std::memory_order_relaxed);
            p.bytes_verified += t.bytes.load(std::memory_order_relaxed);
            p.lost += t.lost.load(std::memory_order_relaxed);
            p.failed_connections += t.failed.load(std::memory_order_relaxed);
        },
        on_progress);
    result.interrupted = g_interrupts.load() > 0;

    for (auto& t : threads) {
        result.latency_ns.merge(t->latency_ns());
        for (const auto& f : t->flows()) result.flows.push_back(f->result());
    }
    std::sort(result.flows.begin(), result.flows.end(),
              [](const UdpFlowResult& a, const UdpFlowResult& b) { return a.id < b.id; });
    for (UdpFlowResult& f : result.flows) {
        // Belt and braces: a flow that neither failed nor sent its count was not verified.
        if (options.count && !result.interrupted && !f.failure && f.counters.sent != *options.count) {
            f.failure = UdpError{UdpErrorKind::Network, f.id, std::nullopt, std::nullopt,
                                 "probe error: stopped after " + std::to_string(f.counters.sent) + " of " +
                                     std::to_string(*options.count) + " datagrams without a reason",
                                 {}, {}};
        }
        result.totals.add(f.counters);
    }
    return result;
}

}  // namespace tcpecho::probe

#include "tools/engine.hpp"

#include <netdb.h>
#include <sys/epoll.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include "lib/address.hpp"
#include "lib/fd.hpp"
#include "tools/payload.hpp"
#include "tools/probe_loop.hpp"
#include "tools/run_threads.hpp"
#include "tools/session.hpp"

namespace tcpecho::probe {

std::atomic<int> g_interrupts{0};

std::uint64_t connection_seed(std::uint64_t seed, unsigned id) noexcept {
    return splitmix64(seed + (std::uint64_t{id} + 1) * kSplitMixGamma);
}

namespace {

// How often sessions are checked for stalls and live figures are published.
constexpr auto kHousekeeping = std::chrono::milliseconds(100);
constexpr std::size_t kScratchSize = 1U << 20;

// One thread's sessions and their loop. Owned through unique_ptr: sessions keep a reference
// to `context`.
class ProbeThread {
public:
    ProbeThread(const Options& options, std::vector<unsigned> ids) : ids_(std::move(ids)) {
        context_.options = &options;
        // The blocking modes read a whole message with one call. Not zero-filled: pages that
        // are never used (small messages) cost no memory.
        std::size_t recv_size = kScratchSize;
        if (options.recv == RecvMode::WaitAll || options.recv == RecvMode::Once) {
            recv_size = std::max<std::size_t>(recv_size, options.shape.largest_message());
        }
        send_buffer_ = std::make_unique_for_overwrite<std::byte[]>(kScratchSize);
        recv_buffer_ = std::make_unique_for_overwrite<std::byte[]>(recv_size);
        context_.send_scratch = {send_buffer_.get(), kScratchSize};
        context_.recv_scratch = {recv_buffer_.get(), recv_size};
        context_.measurements = &measurements_;
        context_.solo = ids_.size() == 1;
        for (unsigned id : ids_) {
            sessions_.push_back(std::make_unique<Session>(context_, id, connection_seed(options.seed, id)));
        }
    }

    void connect_all(const addrinfo* addresses, TimePoint deadline) {
        for (auto& s : sessions_) s->connect(addresses, deadline);
    }

    void run(TimePoint start, std::optional<TimePoint> end);

    std::atomic<std::uint64_t> messages{0};
    std::atomic<std::uint64_t> bytes{0};
    std::atomic<unsigned> failed{0};
    std::atomic<bool> done{false};
    TimePoint finished_at{};  // written before `done`

    std::vector<std::unique_ptr<Session>>& sessions() noexcept { return sessions_; }
    const Measurements& measurements() const noexcept { return measurements_; }

private:
    void publish() noexcept;
    void finish() noexcept {
        publish();
        finished_at = Clock::now();
        done.store(true, std::memory_order_release);
    }

    std::vector<unsigned> ids_;
    SessionContext context_;
    Measurements measurements_;
    std::unique_ptr<std::byte[]> send_buffer_;
    std::unique_ptr<std::byte[]> recv_buffer_;
    std::vector<std::unique_ptr<Session>> sessions_;
};

void ProbeThread::publish() noexcept {
    std::uint64_t m = 0;
    std::uint64_t b = 0;
    unsigned f = 0;
    for (const auto& s : sessions_) {
        m += s->result().messages_verified;
        b += s->result().bytes_verified;
        if (s->result().failure) ++f;
    }
    messages.store(m, std::memory_order_relaxed);
    bytes.store(b, std::memory_order_relaxed);
    failed.store(f, std::memory_order_relaxed);
}

void ProbeThread::run(TimePoint start, std::optional<TimePoint> end) {
    context_.start = start;
    context_.end = end;
    const std::size_t n = sessions_.size();
    // A loop that cannot run must fail its sessions: unfinished is never "verified".
    auto give_up_all = [&](const std::string& what, int error) {
        for (auto& s : sessions_) s->give_up(FailureKind::Reset, "probe error: " + what + ": " + errno_text(error));
    };
    ProbeLoop loop;
    if (int err = loop.open(n); err != 0) {
        give_up_all("epoll_create1", err);
        finish();
        return;
    }

    auto settle = [&](std::uint32_t i) {
        if (sessions_[i]->finished()) loop.count_finished(i);
    };
    auto after_pump = [&](std::uint32_t i, bool more) {
        settle(i);
        if (more) loop.mark_ready(i);
        loop.set_timer(i, sessions_[i]->next_due());
    };
    auto pump = [&](std::uint32_t i, TimePoint now) {
        if (!sessions_[i]->finished()) after_pump(i, sessions_[i]->pump(now));
    };
    auto pump_all = [&](TimePoint now) {
        for (std::uint32_t i = 0; i < n; ++i) pump(i, now);
    };

    for (std::uint32_t i = 0; i < n; ++i) {
        Session& s = *sessions_[i];
        settle(i);
        if (s.finished()) continue;  // could not connect
        if (int err = loop.watch(s.fd(), i, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET); err != 0) {
            s.give_up(FailureKind::Reset, "probe error: epoll_ctl: " + errno_text(err));
            settle(i);
        }
    }
    pump_all(Clock::now());

    bool stopping = false;
    bool abandoned = false;
    bool ended = false;
    TimePoint next_housekeeping = Clock::now() + kHousekeeping;
    while (loop.active() > 0) {
        TimePoint wake_by = next_housekeeping;
        if (end && !ended) wake_by = std::min(wake_by, *end);
        const ProbeLoop::Wait waited = loop.wait(wake_by);
        if (waited.error != 0) {
            give_up_all("epoll_wait", waited.error);
            break;
        }
        const TimePoint now = Clock::now();

        const int interrupts = g_interrupts.load(std::memory_order_relaxed);
        if (!stopping && interrupts >= 1) {
            stopping = true;
            context_.stopping = true;
            pump_all(now);
        }
        if (!abandoned && interrupts >= 2) {
            abandoned = true;
            for (std::uint32_t i = 0; i < n; ++i) {
                if (sessions_[i]->finished()) continue;
                sessions_[i]->abandon();
                settle(i);
            }
            continue;
        }
        if (end && !ended && now >= *end) {
            ended = true;
            pump_all(now);
        }
        for (const epoll_event& event : waited.events) {
            const std::uint32_t i = event.data.u32;
            if (!sessions_[i]->finished()) after_pump(i, sessions_[i]->on_events(event.events, now));
        }
        for (std::uint32_t i : loop.take_ready()) pump(i, now);
        while (auto i = loop.pop_expired(now)) pump(*i, now);
        if (now >= next_housekeeping) {
            for (std::uint32_t i = 0; i < n; ++i) {
                if (sessions_[i]->finished()) continue;
                sessions_[i]->check_stall(now);
                settle(i);
            }
            publish();
            next_housekeeping = now + kHousekeeping;
        }
    }
    finish();
}

RunResult resolve_failure(const Options& options, const std::string& detail) {
    RunResult result;
    result.peer = options.host + ":" + options.port;
    for (unsigned id = 0; id < options.connections; ++id) {
        ConnectionResult c;
        c.id = id;
        c.failure = Failure{FailureKind::Connect, id, 0, 0, detail, {}, {}};
        result.connections.push_back(std::move(c));
    }
    return result;
}

}  // namespace

int RunResult::exit_status() const noexcept {
    int status = kExitOk;
    for (const ConnectionResult& c : connections) {
        if (!c.failure) continue;
        int s = exit_status_of(c.failure->kind);
        if (s == kExitMismatch || status == kExitOk) status = s;
    }
    return status;
}

RunResult run_probe(const Options& options, const std::function<void(const Progress&)>& on_progress) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    addrinfo* addresses = nullptr;
    int rc = ::getaddrinfo(options.host.c_str(), options.port.c_str(), &hints, &addresses);
    if (rc != 0) {
        return resolve_failure(options, "cannot resolve " + options.host + " port " + options.port + ": " +
                                            ::gai_strerror(rc));
    }
    std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owned(addresses, &::freeaddrinfo);

    RunResult result;
    sockaddr_storage first{};
    std::memcpy(&first, addresses->ai_addr, addresses->ai_addrlen);
    result.peer = SocketAddress::from_sockaddr(first, addresses->ai_addrlen).to_string();

    std::vector<std::unique_ptr<ProbeThread>> threads;
    for (unsigned t = 0; t < options.threads; ++t) {
        std::vector<unsigned> ids;
        for (unsigned id = t; id < options.connections; id += options.threads) ids.push_back(id);
        threads.push_back(std::make_unique<ProbeThread>(options, std::move(ids)));
    }

    const TimePoint connect_deadline = Clock::now() + std::chrono::microseconds(options.timeout_us);
    result.seconds = run_threads(
        options, threads, [&](ProbeThread& t) { t.connect_all(addresses, connect_deadline); },
        [](const ProbeThread& t, Progress& p) {
            p.messages_verified += t.messages.load(std::memory_order_relaxed);
            p.bytes_verified += t.bytes.load(std::memory_order_relaxed);
            p.failed_connections += t.failed.load(std::memory_order_relaxed);
        },
        on_progress);
    result.interrupted = g_interrupts.load() > 0;

    for (auto& t : threads) {
        result.totals.merge(t->measurements());
        for (auto& s : t->sessions()) result.connections.push_back(s->result());
    }
    std::sort(result.connections.begin(), result.connections.end(),
              [](const ConnectionResult& a, const ConnectionResult& b) { return a.id < b.id; });
    // Belt and braces: a connection that neither failed nor finished its count was not verified.
    if (options.count && !result.interrupted) {
        for (ConnectionResult& c : result.connections) {
            if (c.failure || c.messages_verified == *options.count) continue;
            c.failure = Failure{FailureKind::Reset, c.id, c.messages_verified, c.bytes_verified,
                                "probe error: stopped after " + std::to_string(c.messages_verified) + " of " +
                                    std::to_string(*options.count) + " messages without a reason",
                                {}, {}};
        }
    }
    return result;
}

}  // namespace tcpecho::probe

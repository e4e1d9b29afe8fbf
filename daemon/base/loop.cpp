#include "daemon/base/loop.hpp"

#include "lib/clock.hpp"
#include "lib/fd.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

// libev's macros use old-style casts; keep our warnings for our own code.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wold-style-cast"
#pragma GCC diagnostic ignored "-Wpedantic"
#include <ev.h>
#pragma GCC diagnostic pop

namespace tcpecho {

namespace {

// Events taken per epoll_wait. Large enough that a busy worker's syscall is amortised over
// many connections; the rest stay queued in the kernel for the next call.
constexpr int kMaxEvents = 256;

double monotonic_seconds() noexcept { return static_cast<double>(monotonic_ns()) * 1e-9; }

[[noreturn]] void fail_start(const char* what, int error) {
    throw std::runtime_error(std::string(what) + ": " + errno_text(error));
}

}  // namespace

Loop::Loop(Kind kind) : kind_(kind) {
    if (kind_ == Kind::Control) {
        // signalfd: signals are read as data on the main thread; worker threads keep them
        // blocked (the server blocks them before starting any thread).
        ev_ = ev_default_loop(static_cast<unsigned>(EVBACKEND_EPOLL) | static_cast<unsigned>(EVFLAG_SIGNALFD));
        if (ev_ == nullptr) throw std::runtime_error("cannot create the main event loop (libev)");
        refresh_now();
        return;
    }
    ev_ = ev_loop_new(static_cast<unsigned>(EVBACKEND_EPOLL) | static_cast<unsigned>(EVFLAG_NOSIGMASK));
    if (ev_ == nullptr) throw std::runtime_error("cannot create a worker event loop (libev)");
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (int err = sys_error(epoll_fd_); err != 0) fail_start("epoll_create1", err);
    // ev_async_send() writes libev's own wake-up pipe only while libev itself is blocked
    // in its poll (pipe_write_wanted); otherwise it leaves pipe_write_skipped set for the
    // next ev_run(). Our outer epoll_wait therefore needs a wake-up of its own.
    wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (int err = sys_error(wake_fd_); err != 0) fail_start("eventfd", err);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = nullptr;  // the only null handler
    if (int err = sys_error(::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev)); err != 0) {
        fail_start("epoll_ctl(eventfd)", err);
    }
    refresh_now();
}

Loop::~Loop() {
    if (wake_fd_ >= 0) ::close(wake_fd_);
    if (epoll_fd_ >= 0) ::close(epoll_fd_);
    if (ev_ != nullptr && kind_ == Kind::Worker) ev_loop_destroy(ev_);
}

int Loop::watch(int fd, IoHandler* handler, std::uint32_t events) noexcept {
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = handler;
    return sys_error(::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev));
}

void Loop::unwatch(int fd) noexcept {
    epoll_event ev{};  // non-null for kernels before 2.6.9
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, &ev);
}

void Loop::defer(IoHandler* handler) noexcept {
    if (!handler->ready_queued()) ready_.push_back(*handler);
}

void Loop::cancel_deferred(IoHandler* handler) noexcept { handler->ListNode<ReadyTag>::unlink(); }

void Loop::run_ready() noexcept {
    // Only what is queued now runs in this pass: a handler that re-queues itself waits for the
    // next iteration, so new epoll events are polled between passes (fairness).
    IntrusiveList<IoHandler, ReadyTag> pass;
    ready_.move_all_to(pass);
    while (IoHandler* h = pass.pop_front()) h->on_ready();  // may free h, or cancel another
}

void Loop::refresh_now() noexcept {
    const std::uint64_t ns = monotonic_ns();
    now_ms_ = ns / 1'000'000;
    now_s_ = static_cast<double>(ns) * 1e-9;
}

int Loop::timer_timeout_ms() const noexcept {
    if (next_timer_deadline_ == 0) return -1;
    double left = next_timer_deadline_ - monotonic_seconds();
    if (left <= 0) return 0;
    return static_cast<int>(std::min(std::ceil(left * 1000.0), 3'600'000.0));
}

bool Loop::timer_due() const noexcept {
    // now_s_ was refreshed right after epoll_wait returned: no second clock read per iteration.
    return next_timer_deadline_ != 0 && now_s_ >= next_timer_deadline_;
}

void Loop::dispatch(int timeout_ms) {
    epoll_event events[kMaxEvents];
    int n = ::epoll_wait(epoll_fd_, events, kMaxEvents, timeout_ms);
    refresh_now();
    bool wake = false;
    for (int i = 0; i < n; ++i) {
        auto* h = static_cast<IoHandler*>(events[i].data.ptr);
        if (h == nullptr) {
            std::uint64_t count = 0;
            ssize_t r = ::read(wake_fd_, &count, sizeof count);
            (void)r;  // EAGAIN: another iteration already drained it
            wake = true;
            continue;
        }
        h->on_io(events[i].events);
    }
    run_ready();
    if (wake || timer_due()) {
        ev_run(ev_, EVRUN_NOWAIT);  // runs due timers and pending asyncs
        // Timers may have been started or stopped in there: recompute the nearest one.
        double nearest = 0;
        for (Timer* t : timers_) {
            if (!t->active()) continue;
            double at = monotonic_seconds() + std::max(0.0, t->remaining());
            if (nearest == 0 || at < nearest) nearest = at;
        }
        next_timer_deadline_ = nearest;
    }
}

void Loop::run() {
    stopping_ = false;
    if (kind_ == Kind::Control) {
        ev_run(ev_, 0);
        return;
    }
    ev_run(ev_, EVRUN_NOWAIT);  // lets libev register its own fds (the async pipe) once
    while (!stopping_) dispatch(ready_.empty() ? timer_timeout_ms() : 0);
}

void Loop::stop() noexcept {
    stopping_ = true;
    if (kind_ == Kind::Control) ev_break(ev_, EVBREAK_ALL);
}

// --- Timer -------------------------------------------------------------------------------

struct Timer::Watcher {
    ev_timer timer;
};

Timer::Timer(Loop& loop, std::function<void()> callback)
    : loop_(loop), callback_(std::move(callback)), w_(std::make_unique<Watcher>()) {
    ev_init(&w_->timer, [](struct ev_loop*, ev_timer* t, int) {
        auto* self = static_cast<Timer*>(t->data);
        self->loop_.refresh_now();  // a long callback before it may have made the cached time stale
        self->callback_();
    });
    w_->timer.data = this;
    loop_.timers_.push_back(this);
}

Timer::~Timer() {
    stop();
    auto& v = loop_.timers_;
    v.erase(std::remove(v.begin(), v.end(), this), v.end());
}

void Timer::start(double after_s, double repeat_s) {
    // Our outer loop refreshes libev's clock only when libev runs; a stale clock would make
    // this timer fire early by the staleness.
    ev_now_update(loop_.ev_);
    ev_timer_stop(loop_.ev_, &w_->timer);
    ev_timer_set(&w_->timer, after_s, repeat_s);
    ev_timer_start(loop_.ev_, &w_->timer);
    double at = monotonic_seconds() + after_s;
    if (loop_.next_timer_deadline_ == 0 || at < loop_.next_timer_deadline_) loop_.next_timer_deadline_ = at;
}

void Timer::stop() noexcept { ev_timer_stop(loop_.ev_, &w_->timer); }

bool Timer::active() const noexcept { return ev_is_active(&w_->timer); }

double Timer::remaining() const noexcept { return ev_timer_remaining(loop_.ev_, &w_->timer); }

// --- Async -------------------------------------------------------------------------------

struct Async::Watcher {
    ev_async async;
};

Async::Async(Loop& loop, std::function<void()> callback)
    : loop_(loop), callback_(std::move(callback)), w_(std::make_unique<Watcher>()) {
    ev_async_init(&w_->async, [](struct ev_loop*, ev_async* a, int) {
        auto* self = static_cast<Async*>(a->data);
        self->loop_.refresh_now();
        self->callback_();
    });
    w_->async.data = this;
    ev_async_start(loop_.ev_, &w_->async);
}

Async::~Async() { ev_async_stop(loop_.ev_, &w_->async); }

void Async::send() noexcept {
    ev_async_send(loop_.ev_, &w_->async);
    if (loop_.wake_fd_ >= 0) {
        std::uint64_t one = 1;
        ssize_t r = ::write(loop_.wake_fd_, &one, sizeof one);
        (void)r;  // EAGAIN only if the counter is saturated: a wake-up is pending anyway
    }
}

// --- SignalWatcher -----------------------------------------------------------------------

struct SignalWatcher::Watcher {
    ev_signal signal;
};

SignalWatcher::SignalWatcher(Loop& loop, int signum, std::function<void()> callback)
    : loop_(loop), callback_(std::move(callback)), w_(std::make_unique<Watcher>()) {
    ev_signal_init(&w_->signal,
                   [](struct ev_loop*, ev_signal* s, int) { static_cast<SignalWatcher*>(s->data)->callback_(); },
                   signum);
    w_->signal.data = this;
    ev_signal_start(loop_.ev_, &w_->signal);
}

SignalWatcher::~SignalWatcher() { ev_signal_stop(loop_.ev_, &w_->signal); }

}  // namespace tcpecho

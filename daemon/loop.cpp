#include "loop.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <ctime>
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

double monotonic_seconds() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

[[noreturn]] void fail_start(const char* what) {
    throw std::runtime_error(std::string(what) + ": " + std::strerror(errno));
}

}  // namespace

std::string_view to_string(LoopStrategy strategy) noexcept {
    return strategy == LoopStrategy::OuterEpoll ? "outer-epoll" : "nested-in-libev";
}

LoopStrategy loop_strategy_from_env() noexcept {
    const char* v = std::getenv("TCPECHOD_LOOP");
    if (v != nullptr && std::strcmp(v, "nested") == 0) return LoopStrategy::NestedInLibev;
    return LoopStrategy::OuterEpoll;
}

// Nested strategy: our epoll fd as an ev_io, and an ev_idle that keeps libev from blocking
// while the ready list has work.
struct Loop::NestedWatchers {
    ev_io epoll_watcher;
    ev_idle ready_watcher;
};

Loop::Loop(Kind kind, LoopStrategy strategy) : kind_(kind), strategy_(strategy) {
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
    if (epoll_fd_ < 0) fail_start("epoll_create1");
    if (strategy_ == LoopStrategy::OuterEpoll) {
        // ev_async_send() writes libev's own wake-up pipe only while libev itself is blocked
        // in its poll (pipe_write_wanted); otherwise it leaves pipe_write_skipped set for the
        // next ev_run(). Our outer epoll_wait therefore needs a wake-up of its own.
        wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (wake_fd_ < 0) fail_start("eventfd");
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.ptr = nullptr;  // the only null handler
        if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0) fail_start("epoll_ctl(eventfd)");
    } else {
        nested_ = std::make_unique<NestedWatchers>();
        ev_io_init(&nested_->epoll_watcher,
                   [](struct ev_loop*, ev_io* w, int) {
                       static_cast<Loop*>(w->data)->dispatch(0);
                   },
                   epoll_fd_, EV_READ);
        nested_->epoll_watcher.data = this;
        ev_io_start(ev_, &nested_->epoll_watcher);
        ev_idle_init(&nested_->ready_watcher, [](struct ev_loop*, ev_idle* w, int) {
            static_cast<Loop*>(w->data)->dispatch(0);
        });
        nested_->ready_watcher.data = this;
    }
    refresh_now();
}

Loop::~Loop() {
    if (nested_) {
        ev_io_stop(ev_, &nested_->epoll_watcher);
        ev_idle_stop(ev_, &nested_->ready_watcher);
    }
    if (wake_fd_ >= 0) ::close(wake_fd_);
    if (epoll_fd_ >= 0) ::close(epoll_fd_);
    if (ev_ != nullptr && kind_ == Kind::Worker) ev_loop_destroy(ev_);
}

bool Loop::watch(int fd, IoHandler* handler, std::uint32_t events) noexcept {
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = handler;
    return ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) == 0;
}

void Loop::unwatch(int fd) noexcept {
    epoll_event ev{};  // non-null for kernels before 2.6.9
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, &ev);
}

void Loop::defer(IoHandler* handler) noexcept {
    if (handler->ready_queued_) return;
    handler->ready_queued_ = true;
    handler->ready_next_ = nullptr;
    if (ready_tail_ != nullptr) ready_tail_->ready_next_ = handler;
    else ready_head_ = handler;
    ready_tail_ = handler;
}

void Loop::cancel_deferred(IoHandler* handler) noexcept {
    if (!handler->ready_queued_) return;
    IoHandler* prev = nullptr;
    for (IoHandler* h = ready_head_; h != nullptr; prev = h, h = h->ready_next_) {
        if (h != handler) continue;
        if (prev != nullptr) prev->ready_next_ = h->ready_next_;
        else ready_head_ = h->ready_next_;
        if (ready_tail_ == h) ready_tail_ = prev;
        break;
    }
    handler->ready_queued_ = false;
    handler->ready_next_ = nullptr;
}

void Loop::run_ready() noexcept {
    // Only what is queued now runs in this pass: a handler that re-queues itself waits for the
    // next iteration, so new epoll events are polled between passes (fairness).
    IoHandler* h = ready_head_;
    ready_head_ = ready_tail_ = nullptr;
    while (h != nullptr) {
        IoHandler* next = h->ready_next_;
        h->ready_queued_ = false;
        h->ready_next_ = nullptr;
        h->on_ready();  // may free h
        h = next;
    }
}

std::uint64_t monotonic_ms() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000 + static_cast<std::uint64_t>(ts.tv_nsec) / 1'000'000;
}

void Loop::refresh_now() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    now_ms_ = static_cast<std::uint64_t>(ts.tv_sec) * 1000 + static_cast<std::uint64_t>(ts.tv_nsec) / 1'000'000;
    now_s_ = static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
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
    if (strategy_ == LoopStrategy::OuterEpoll) {
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
    } else if (ready_head_ != nullptr) {
        ev_idle_start(ev_, &nested_->ready_watcher);
    } else {
        ev_idle_stop(ev_, &nested_->ready_watcher);
    }
}

void Loop::run_outer() {
    ev_run(ev_, EVRUN_NOWAIT);  // lets libev register its own fds (the async pipe) once
    while (!stopping_) {
        dispatch(ready_head_ != nullptr ? 0 : timer_timeout_ms());
    }
}

void Loop::run_nested() {
    while (!stopping_) ev_run(ev_, EVRUN_ONCE);
}

void Loop::run() {
    stopping_ = false;
    if (kind_ == Kind::Control) {
        ev_run(ev_, 0);
        return;
    }
    if (strategy_ == LoopStrategy::OuterEpoll) run_outer();
    else run_nested();
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
        self->loop_.refresh_now();  // nested strategy: no socket event may have refreshed it
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

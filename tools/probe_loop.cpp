#include "tools/probe_loop.hpp"

#include <algorithm>
#include <cerrno>
#include <ctime>

namespace tcpecho::probe {

int ProbeLoop::open(std::size_t items) {
    const int fd = ::epoll_create1(EPOLL_CLOEXEC);
    if (int err = sys_error(fd); err != 0) return err;
    epoll_.reset(fd);
    finished_.assign(items, 0);
    active_ = items;
    in_ready_.assign(items, 0);
    queued_due_.assign(items, TimePoint::max());
    return 0;
}

int ProbeLoop::watch(int fd, Item item, std::uint32_t events) noexcept {
    epoll_event ev{};
    ev.events = events;
    ev.data.u32 = item;
    return sys_error(::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev));
}

int ProbeLoop::rewatch(int fd, Item item, std::uint32_t events) noexcept {
    epoll_event ev{};
    ev.events = events;
    ev.data.u32 = item;
    return sys_error(::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev));
}

void ProbeLoop::unwatch(int fd) noexcept {
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
}

bool ProbeLoop::count_finished(Item item) noexcept {
    if (finished_[item] != 0) return false;
    finished_[item] = 1;
    --active_;
    return true;
}

void ProbeLoop::mark_ready(Item item) {
    if (in_ready_[item] != 0) return;
    in_ready_[item] = 1;
    ready_.push_back(item);
}

const std::vector<ProbeLoop::Item>& ProbeLoop::take_ready() {
    batch_.clear();
    batch_.swap(ready_);
    for (Item item : batch_) in_ready_[item] = 0;
    return batch_;
}

void ProbeLoop::set_timer(Item item, TimePoint due) {
    if (due == TimePoint::max() || due == queued_due_[item]) return;
    queued_due_[item] = due;
    timers_.emplace(due, item);
}

void ProbeLoop::advance_timer(Item item, TimePoint due) {
    if (due >= queued_due_[item]) return;
    queued_due_[item] = due;
    timers_.emplace(due, item);
}

std::optional<ProbeLoop::Item> ProbeLoop::pop_expired(TimePoint now) {
    while (!timers_.empty() && timers_.top().first <= now) {
        const auto [due, item] = timers_.top();
        timers_.pop();
        if (queued_due_[item] != due) continue;  // superseded
        queued_due_[item] = TimePoint::max();
        return item;
    }
    return std::nullopt;
}

ProbeLoop::Wait ProbeLoop::wait(TimePoint wake_by) {
    const TimePoint now = Clock::now();
    TimePoint wake = wake_by;
    if (!timers_.empty()) wake = std::min(wake, timers_.top().first);
    std::chrono::nanoseconds timeout{0};
    if (ready_.empty() && wake > now) timeout = std::chrono::duration_cast<std::chrono::nanoseconds>(wake - now);
    return wait_for(timeout);
}

ProbeLoop::Wait ProbeLoop::wait_for(std::chrono::nanoseconds timeout) noexcept {
    timespec ts{0, 0};
    if (timeout.count() > 0) {
        ts.tv_sec = static_cast<time_t>(timeout.count() / 1'000'000'000);
        ts.tv_nsec = static_cast<long>(timeout.count() % 1'000'000'000);
    }
    auto reported = [this](int got, int err) -> Wait {
        if (err == EINTR) return {0, {}};
        if (err != 0) return {err, {}};
        return {0, std::span<const epoll_event>(events_.data(), static_cast<std::size_t>(got))};
    };
    if (have_pwait2_) {
        const int got = ::epoll_pwait2(epoll_.get(), events_.data(), kMaxEvents, &ts, nullptr);
        if (int err = sys_error(got); err != ENOSYS) return reported(got, err);
        // Before Linux 5.11 (or under a seccomp filter): millisecond timeouts, rounded up.
        have_pwait2_ = false;
    }
    const long ms = ts.tv_sec * 1000 + (ts.tv_nsec + 999'999) / 1'000'000;
    const int got = ::epoll_wait(epoll_.get(), events_.data(), kMaxEvents, static_cast<int>(ms));
    return reported(got, sys_error(got));
}

}  // namespace tcpecho::probe

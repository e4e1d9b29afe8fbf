// epoll_wait with the timer precision the probe needs: its pacing (--rate) and deadlines are
// finer than the milliseconds epoll_wait takes. Shared by the TCP and the UDP engines.
#pragma once

#include <sys/epoll.h>

#include <cerrno>
#include <chrono>
#include <ctime>

namespace tcpecho::probe {

class EpollWaiter {
public:
    // Like epoll_wait(), but `timeout` (<= 0: do not block) in nanoseconds. -1 with errno on
    // failure (EINTR included: the caller checks its signal flags).
    int wait(int epoll_fd, epoll_event* events, int max_events, std::chrono::nanoseconds timeout) noexcept {
        timespec ts{0, 0};
        if (timeout.count() > 0) {
            ts.tv_sec = static_cast<time_t>(timeout.count() / 1'000'000'000);
            ts.tv_nsec = static_cast<long>(timeout.count() % 1'000'000'000);
        }
        int got = have_pwait2_ ? ::epoll_pwait2(epoll_fd, events, max_events, &ts, nullptr) : -1;
        if (got < 0 && (!have_pwait2_ || errno == ENOSYS)) {
            // Before Linux 5.11 (or under a seccomp filter): millisecond timeouts, rounded up.
            have_pwait2_ = false;
            long ms = ts.tv_sec * 1000 + (ts.tv_nsec + 999'999) / 1'000'000;
            got = ::epoll_wait(epoll_fd, events, max_events, static_cast<int>(ms));
        }
        return got;
    }

private:
    bool have_pwait2_ = true;
};

}  // namespace tcpecho::probe

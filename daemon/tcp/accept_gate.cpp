#include "daemon/tcp/accept_gate.hpp"

#include <fcntl.h>
#include <unistd.h>

namespace tcpecho {

namespace {

int open_reserve() noexcept { return ::open("/dev/null", O_RDONLY | O_CLOEXEC); }

}  // namespace

AcceptGate::AcceptGate() : reserve_(open_reserve()) {}

AcceptResult AcceptGate::accept(int listen_fd) noexcept {
    std::lock_guard lock(mutex_);
    AcceptResult r = accept_connection(listen_fd);
    if (r.status != IoStatus::OutOfFds) return r;
    if (!reserve_) {
        // Lost earlier (something else in the process took the fd); maybe one is free now.
        reserve_.reset(open_reserve());
        if (!reserve_) return {IoStatus::OutOfFds, -1, r.error};
    }
    reserve_.reset();
    AcceptResult shed = accept_connection(listen_fd);
    if (shed.status == IoStatus::Ok) ::close(shed.fd);
    reserve_.reset(open_reserve());
    // accept4() checks for a free fd before it looks at the queue, so EMFILE does not prove a
    // connection was pending: WouldBlock here means there was none to shed.
    if (shed.status == IoStatus::WouldBlock) return {IoStatus::WouldBlock, -1, 0};
    return {IoStatus::Shed, -1, r.error};
}

}  // namespace tcpecho

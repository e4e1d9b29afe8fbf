#include "accept_gate.hpp"

#include <fcntl.h>
#include <unistd.h>

namespace tcpecho {

namespace {

int open_reserve() noexcept { return ::open("/dev/null", O_RDONLY | O_CLOEXEC); }

}  // namespace

AcceptGate::AcceptGate() : reserve_(open_reserve()) {}

AcceptGate::Result AcceptGate::accept(int listen_fd) noexcept {
    std::lock_guard lock(mutex_);
    AcceptResult r = accept_connection(listen_fd);
    switch (r.status) {
    case AcceptStatus::Accepted:
        return {Outcome::Accepted, r.fd, 0};
    case AcceptStatus::WouldBlock:
        return {Outcome::WouldBlock, -1, 0};
    case AcceptStatus::Transient:
        return {Outcome::Transient, -1, r.error};
    case AcceptStatus::Error:
        return {Outcome::Error, -1, r.error};
    case AcceptStatus::OutOfFds:
        break;
    }
    if (!reserve_) {
        // Lost earlier (something else in the process took the fd); maybe one is free now.
        reserve_.reset(open_reserve());
        if (!reserve_) return {Outcome::NoReserve, -1, r.error};
    }
    reserve_.reset();
    AcceptResult shed = accept_connection(listen_fd);
    if (shed.status == AcceptStatus::Accepted) ::close(shed.fd);
    reserve_.reset(open_reserve());
    // accept4() checks for a free fd before it looks at the queue, so EMFILE does not prove a
    // connection was pending: WouldBlock here means there was none to shed.
    if (shed.status == AcceptStatus::WouldBlock) return {Outcome::WouldBlock, -1, 0};
    return {Outcome::Shed, -1, r.error};
}

}  // namespace tcpecho

// accept4() for all workers, with one reserve fd for running out of descriptors.
//
// EMFILE/ENFILE: close the reserve, accept the pending connection, close it, reopen the
// reserve (libev(3), "The special problem of accept()ing when you can't"). With several
// workers sharing a listener, that dance must not interleave with another worker's accept4(),
// which would take the freed descriptor and leave the reserve unrecoverable — so every
// accept4() goes through one mutex. Uncontended, it costs far less than the syscall.
#pragma once

#include <cstdint>
#include <mutex>

#include "fd.hpp"

namespace tcpecho {

class AcceptGate {
public:
    AcceptGate();

    enum class Outcome : std::uint8_t {
        Accepted,    // `fd` is a new connection
        WouldBlock,  // nothing pending
        Shed,        // out of fds: one pending connection was accepted and closed
        NoReserve,   // out of fds and the reserve could not be reopened: stop accepting a while
        Transient,   // that connection failed; try the next one
        Error,       // `error`: stop for this wake-up
    };
    struct Result {
        Outcome outcome;
        int fd;
        int error;
    };

    Result accept(int listen_fd) noexcept;

private:
    std::mutex mutex_;
    UniqueFd reserve_;
};

}  // namespace tcpecho

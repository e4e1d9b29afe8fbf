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

#include "lib/fd.hpp"

namespace tcpecho {

class AcceptGate {
public:
    AcceptGate();

    // accept_connection(), except when out of fds: then Shed (one pending connection was
    // accepted and closed, `error` says why) or, if the reserve could not be reopened,
    // OutOfFds (stop accepting a while).
    AcceptResult accept(int listen_fd) noexcept;

private:
    std::mutex mutex_;
    UniqueFd reserve_;
};

}  // namespace tcpecho

// File descriptors and the I/O result contract: the only place errno is read.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace tcpecho {

// Owns one file descriptor; closes it on destruction. Move-only.
class UniqueFd {
public:
    UniqueFd() noexcept = default;
    explicit UniqueFd(int fd) noexcept : fd_(fd) {}
    UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
    UniqueFd& operator=(UniqueFd&& other) noexcept {
        if (this != &other) reset(other.release());
        return *this;
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    ~UniqueFd() { reset(); }

    [[nodiscard]] int get() const noexcept { return fd_; }
    [[nodiscard]] explicit operator bool() const noexcept { return fd_ >= 0; }
    int release() noexcept {
        int fd = fd_;
        fd_ = -1;
        return fd;
    }
    void reset(int fd = -1) noexcept;

private:
    int fd_ = -1;
};

// What a non-blocking socket call did. errno is sorted here once, so callers never read it.
enum class IoStatus : std::uint8_t {
    Ok,          // `bytes` transferred (may be fewer than asked)
    WouldBlock,  // EAGAIN/EWOULDBLOCK: wait for the next edge
    Eof,         // recv() returned 0: the peer shut down its sending side
    PeerGone,    // ECONNRESET, EPIPE, ETIMEDOUT...: the connection is dead, not our fault
    Error,       // anything else: a bug or a resource problem worth logging
};

struct IoResult {
    IoStatus status;
    std::size_t bytes;
    int error;  // errno for PeerGone/Error, 0 otherwise
};

// recv()/send() with EINTR retried and MSG_NOSIGNAL on send (SIGPIPE never kills us).
// `flags` adds MSG_DONTWAIT, MSG_WAITALL...; a blocking call that hits SO_RCVTIMEO or
// SO_SNDTIMEO reports WouldBlock.
IoResult recv_some(int fd, void* buf, std::size_t len, int flags = 0) noexcept;
IoResult send_some(int fd, const void* buf, std::size_t len, int flags = 0) noexcept;

// The socket's pending error (getsockopt SO_ERROR), as an IoResult: PeerGone or Error with
// it, or WouldBlock when there is none. For a connection that is not reading (paused) and is
// told of an error by EPOLLERR: a recv() would report it, but must not be called.
IoResult pending_error(int fd) noexcept;

enum class AcceptStatus : std::uint8_t {
    Accepted,
    WouldBlock,  // queue drained
    OutOfFds,    // EMFILE/ENFILE: use the reserve fd
    Transient,   // ECONNABORTED, EPROTO, ...: the next one may work
    Error,       // ENOBUFS/ENOMEM and friends: stop for this wake-up
};

struct AcceptResult {
    AcceptStatus status;
    int fd;
    int error;
};

// accept4(SOCK_NONBLOCK | SOCK_CLOEXEC). The peer address is not asked for: it is looked up
// (SocketAddress::peer_text) only on the rare paths that log it.
AcceptResult accept_connection(int listen_fd) noexcept;

std::string errno_text(int error);

}  // namespace tcpecho

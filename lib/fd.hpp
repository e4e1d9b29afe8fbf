// File descriptors and the I/O result contract: the one place socket calls' errno is read.
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

// What a socket call did, sorted from errno once, here: the one result family of every call
// on a descriptor (stream, batch, accept). Callers never read errno.
enum class IoStatus : std::uint8_t {
    Ok,          // it worked: see the result's amount
    WouldBlock,  // EAGAIN/EWOULDBLOCK: wait for the next edge (accept: the queue is drained)
    Eof,         // recv() returned 0: the peer shut down its sending side
    PeerGone,    // ECONNRESET, EPIPE, ETIMEDOUT...: the connection is dead, not our fault
    OutOfFds,    // accept: EMFILE/ENFILE
    Transient,   // accept: that one connection failed (ECONNABORTED, EPROTO...); the next may work
    Shed,        // AcceptGate: out of fds, so one pending connection was accepted and closed
    Error,       // anything else: a bug or a resource problem worth logging
};

// A stream call: `bytes` moved (may be fewer than asked).
struct IoResult {
    IoStatus status;
    std::size_t bytes;
    int error;  // errno when it failed, 0 otherwise
};

// A batch call (recvmmsg/sendmmsg): `messages` moved.
struct BatchResult {
    IoStatus status;
    unsigned messages;
    int error;
};

// An accept: `fd` is the new connection when Ok.
struct AcceptResult {
    IoStatus status;
    int fd;
    int error;
};

// For calls that either work or fail (socket options, bind, listen...): 0 when `rc` says the
// call worked (rc >= 0), else its errno. Call it on the call's return value directly:
// `if (int err = sys_error(::bind(...)); err != 0) ...`.
[[nodiscard]] int sys_error(long rc) noexcept;

// recv()/send() with EINTR retried and MSG_NOSIGNAL on send (SIGPIPE never kills us).
// `flags` adds MSG_DONTWAIT, MSG_WAITALL...; a blocking call that hits SO_RCVTIMEO or
// SO_SNDTIMEO reports WouldBlock.
IoResult recv_some(int fd, void* buf, std::size_t len, int flags = 0) noexcept;
IoResult send_some(int fd, const void* buf, std::size_t len, int flags = 0) noexcept;

// The socket's pending error (getsockopt SO_ERROR), as an IoResult: PeerGone or Error with
// it, or WouldBlock when there is none. For a connection that is not reading (paused) and is
// told of an error by EPOLLERR: a recv() would report it, but must not be called.
IoResult pending_error(int fd) noexcept;

// accept4(SOCK_NONBLOCK | SOCK_CLOEXEC). The peer address is not asked for: it is looked up
// (SocketAddress::peer_text) only on the rare paths that log it.
AcceptResult accept_connection(int listen_fd) noexcept;

// recvmmsg()/sendmmsg() without waiting, EINTR retried.
BatchResult recv_batch(int fd, mmsghdr* messages, unsigned count) noexcept;
BatchResult send_batch(int fd, mmsghdr* messages, unsigned count) noexcept;

// Reads the whole file at `path` into `text`. `error` is 0, or the errno of the call named
// by `step` ("open" or "read").
struct FileRead {
    int error;
    const char* step;
};
FileRead read_whole_file(const std::string& path, std::string& text);

// Creates or truncates `path` for writing (mode 0644): the descriptor, or -1 and `error`.
int open_for_writing(const std::string& path, int& error) noexcept;

// The message of `error` (an errno value); thread-safe, unlike strerror().
std::string errno_text(int error);

}  // namespace tcpecho

namespace tcpecho {

// recvmsg() with EINTR retried, for a datagram and its control messages (SO_RXQ_OVFL...).
// A 0 return is a 0-byte datagram: Ok with 0 bytes, never Eof.
IoResult recv_message(int fd, msghdr* message, int flags = 0) noexcept;

}  // namespace tcpecho

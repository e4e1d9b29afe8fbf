#include "lib/fd.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace tcpecho {

void UniqueFd::reset(int fd) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
}

namespace {

bool is_peer_gone(int err) noexcept {
    switch (err) {
    case ECONNRESET:
    case EPIPE:
    case ETIMEDOUT:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case ENETDOWN:
    case ECONNREFUSED:
        return true;
    default:
        return false;
    }
}

IoResult failure(int err) noexcept {
    if (err == EAGAIN) return {IoStatus::WouldBlock, 0, 0};  // == EWOULDBLOCK on Linux
    return {is_peer_gone(err) ? IoStatus::PeerGone : IoStatus::Error, 0, err};
}

}  // namespace

IoResult pending_error(int fd) noexcept {
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err == 0) return {IoStatus::WouldBlock, 0, 0};
    return failure(err);
}

IoResult recv_some(int fd, void* buf, std::size_t len, int flags) noexcept {
    for (;;) {
        ssize_t n = ::recv(fd, buf, len, flags);
        if (n > 0) return {IoStatus::Ok, static_cast<std::size_t>(n), 0};
        if (n == 0) return {IoStatus::Eof, 0, 0};
        if (errno == EINTR) continue;
        return failure(errno);
    }
}

IoResult send_some(int fd, const void* buf, std::size_t len, int flags) noexcept {
    for (;;) {
        ssize_t n = ::send(fd, buf, len, flags | MSG_NOSIGNAL);
        if (n >= 0) return {IoStatus::Ok, static_cast<std::size_t>(n), 0};
        if (errno == EINTR) continue;
        return failure(errno);
    }
}

int sys_error(long rc) noexcept { return rc >= 0 ? 0 : errno; }

BatchResult recv_batch(int fd, mmsghdr* messages, unsigned count) noexcept {
    for (;;) {
        int n = ::recvmmsg(fd, messages, count, MSG_DONTWAIT, nullptr);
        if (n >= 0) return {IoStatus::Ok, static_cast<unsigned>(n), 0};
        if (errno == EINTR) continue;
        IoResult r = failure(errno);
        return {r.status, 0, r.error};
    }
}

BatchResult send_batch(int fd, mmsghdr* messages, unsigned count) noexcept {
    for (;;) {
        int n = ::sendmmsg(fd, messages, count, MSG_DONTWAIT);
        if (n >= 0) return {IoStatus::Ok, static_cast<unsigned>(n), 0};
        if (errno == EINTR) continue;
        IoResult r = failure(errno);
        return {r.status, 0, r.error};
    }
}

AcceptResult accept_connection(int listen_fd) noexcept {
    for (;;) {
        int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) return {IoStatus::Ok, fd, 0};
        int err = errno;
        switch (err) {
        case EINTR:
            continue;
        case EAGAIN:
            return {IoStatus::WouldBlock, -1, 0};
        case EMFILE:
        case ENFILE:
            return {IoStatus::OutOfFds, -1, err};
        // accept(2): "Linux accept() passes already-pending network errors on the new socket
        // as an error code from accept()"; those concern that one connection only.
        case ECONNABORTED:
        case EPROTO:
        case ENOPROTOOPT:
        case EHOSTDOWN:
        case ENONET:
        case EHOSTUNREACH:
        case EOPNOTSUPP:
        case ENETUNREACH:
        case EPERM:
            return {IoStatus::Transient, -1, err};
        default:
            return {IoStatus::Error, -1, err};
        }
    }
}

FileRead read_whole_file(const std::string& path, std::string& text) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return {errno, "open"};
    char chunk[65536];
    for (;;) {
        ssize_t n = ::read(fd.get(), chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return {errno, "read"};
        if (n == 0) return {0, ""};
        text.append(chunk, static_cast<std::size_t>(n));
    }
}

int open_for_writing(const std::string& path, int& error) noexcept {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    error = fd < 0 ? errno : 0;
    return fd;
}

std::string errno_text(int error) {
    char buf[128];
    // GNU strerror_r returns the message pointer (may not use buf).
    const char* msg = ::strerror_r(error, buf, sizeof buf);
    return msg;
}

}  // namespace tcpecho

namespace tcpecho {

IoResult recv_message(int fd, msghdr* message, int flags) noexcept {
    for (;;) {
        ssize_t n = ::recvmsg(fd, message, flags);
        if (n >= 0) return {IoStatus::Ok, static_cast<std::size_t>(n), 0};
        if (errno == EINTR) continue;
        return failure(errno);
    }
}

}  // namespace tcpecho

#include "client.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "lib/address.hpp"
#include "lib/framer.hpp"
#include "tools/payload.hpp"

namespace tcpecho::test {

namespace {

int remaining_ms(std::chrono::steady_clock::time_point deadline) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    return left < 0 ? 0 : static_cast<int>(left);
}

}  // namespace

UniqueFd connect_to(std::uint16_t port, const std::string& host) {
    auto addr = SocketAddress::parse(host, port);
    if (!addr) throw std::runtime_error("bad address " + host);
    UniqueFd fd(::socket(addr->family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) throw std::runtime_error("socket failed");
    if (::connect(fd.get(), addr->get(), addr->length()) != 0) {
        throw std::runtime_error("connect to " + addr->to_string() + " failed: " + std::strerror(errno));
    }
    int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

void send_all(int fd, const void* data, std::size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
        ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) throw std::runtime_error(std::string("send failed: ") + std::strerror(errno));
        p += w;
        n -= static_cast<std::size_t>(w);
    }
}

bool readable_within(int fd, milliseconds timeout) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, static_cast<int>(timeout.count())) > 0;
}

bool recv_exact(int fd, void* buf, std::size_t n, milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    char* p = static_cast<char*>(buf);
    while (n > 0) {
        if (!readable_within(fd, milliseconds(remaining_ms(deadline)))) return false;
        ssize_t r = ::recv(fd, p, n, MSG_DONTWAIT);
        if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (r <= 0) return false;
        p += r;
        n -= static_cast<std::size_t>(r);
    }
    return true;
}

std::string recv_string(int fd, std::size_t n, milliseconds timeout) {
    std::string s(n, '\0');
    if (!recv_exact(fd, s.data(), n, timeout)) return {};
    return s;
}

bool read_to_eof(int fd, std::string& out, milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    char buf[65536];
    for (;;) {
        if (!readable_within(fd, milliseconds(remaining_ms(deadline)))) return false;
        ssize_t r = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (r <= 0) return true;
        out.append(buf, static_cast<std::size_t>(r));
    }
}

bool closed_by_peer_within(int fd, milliseconds timeout) {
    std::string ignored;
    return read_to_eof(fd, ignored, timeout);
}

void close_with_reset(UniqueFd& fd) {
    linger l{1, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
    fd.reset();
}

TransferResult full_duplex(int fd, std::uint64_t total, std::uint64_t seed, milliseconds timeout,
                           const std::function<void(std::uint64_t)>& on_progress) {
    TransferResult res;
    PayloadStream tx(seed);
    PayloadStream rx(seed);
    std::vector<std::byte> out(256 * 1024);
    std::vector<std::byte> in(256 * 1024);
    std::size_t out_len = 0;
    std::size_t out_off = 0;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (res.verified < total) {
        if (std::chrono::steady_clock::now() > deadline) {
            res.error = "timeout after sending " + std::to_string(res.sent) + " and verifying " +
                        std::to_string(res.verified) + " bytes";
            return res;
        }
        if (out_off == out_len && res.sent < total) {
            out_len = static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), total - res.sent));
            tx.fill(out.data(), out_len);
            out_off = 0;
        }
        pollfd p{fd, POLLIN, 0};
        if (out_off < out_len) p.events |= POLLOUT;
        int n = ::poll(&p, 1, 100);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) continue;
        if ((p.revents & POLLOUT) != 0) {
            ssize_t w = ::send(fd, out.data() + out_off, out_len - out_off, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (w > 0) {
                out_off += static_cast<std::size_t>(w);
                res.sent += static_cast<std::uint64_t>(w);
            } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                res.error = std::string("send: ") + std::strerror(errno);
                return res;
            }
        }
        if ((p.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
            ssize_t r = ::recv(fd, in.data(), in.size(), MSG_DONTWAIT);
            if (r == 0) {
                res.error = "early EOF after " + std::to_string(res.verified) + " bytes";
                return res;
            }
            if (r < 0) {
                if (errno == EAGAIN || errno == EINTR) continue;
                res.error = std::string("recv: ") + std::strerror(errno);
                return res;
            }
            std::size_t bad = rx.verify(in.data(), static_cast<std::size_t>(r));
            if (bad != static_cast<std::size_t>(r)) {
                res.error = "mismatch at stream offset " + std::to_string(res.verified + bad);
                return res;
            }
            res.verified += static_cast<std::uint64_t>(r);
            if (res.verified > res.sent) {
                res.error = "received more than was sent";
                return res;
            }
            if (on_progress) on_progress(res.verified);
        }
    }
    res.ok = true;
    return res;
}

std::string length_frame(const std::string& payload) {
    std::string f(kLengthHeaderSize, '\0');
    write_length_header(reinterpret_cast<std::byte*>(f.data()), static_cast<std::uint32_t>(payload.size()));
    return f + payload;
}

}  // namespace tcpecho::test

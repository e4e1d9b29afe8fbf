#include "daemon/tcp/listener.hpp"

#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>  // EINVAL
#include <stdexcept>

namespace tcpecho {

namespace {

// Accept queue length; the kernel caps it at net.core.somaxconn.
constexpr int kListenBacklog = 4096;

[[noreturn]] void fail(const ListenerConfig& c, const char* what, int err) {
    throw std::runtime_error("listener \"" + c.name + "\" on " + c.address + ":" + std::to_string(c.port) + ": " +
                             what + ": " + errno_text(err));
}

}  // namespace

Listener::Listener(const ListenerConfig& config, std::shared_ptr<ListenSocket> socket)
    : config_(config), socket_(std::move(socket)), framer_(config.mode, config.frame_size, config.limits.max_frame) {}

std::shared_ptr<ListenSocket> ListenSocket::open(const ListenerConfig& config) {
    auto addr = SocketAddress::parse(config.address, config.port);
    if (!addr) fail(config, "bad address", EINVAL);
    const int s = ::socket(addr->family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (int err = sys_error(s); err != 0) fail(config, "socket", err);
    UniqueFd fd(s);
    int one = 1;
    if (int err = sys_error(::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one)); err != 0) fail(config, "SO_REUSEADDR", err);
    if (addr->family() == AF_INET6) {
        // "::" serves IPv4 too (dual stack), whatever net.ipv6.bindv6only says.
        int zero = 0;
        if (int err = sys_error(::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero)); err != 0) fail(config, "IPV6_V6ONLY", err);
    }
    if (int err = sys_error(::bind(fd.get(), addr->get(), addr->length())); err != 0) fail(config, "bind", err);
    if (int err = sys_error(::listen(fd.get(), kListenBacklog)); err != 0) fail(config, "listen", err);
    int err = 0;
    auto local = SocketAddress::local_of(fd.get(), &err);
    if (!local) fail(config, "getsockname", err);
    return std::shared_ptr<ListenSocket>(new ListenSocket(std::move(fd), *local, false));
}

std::shared_ptr<ListenSocket> ListenSocket::adopt(UniqueFd fd, SocketAddress local) {
    return std::shared_ptr<ListenSocket>(new ListenSocket(std::move(fd), local, true));
}

bool Listener::try_add_connection() noexcept {
    std::uint32_t now = socket_->connections.load(std::memory_order_relaxed);
    do {
        if (now >= config_.limits.max_connections) return false;
    } while (!socket_->connections.compare_exchange_weak(now, now + 1, std::memory_order_relaxed));
    return true;
}

std::string Listener::describe() const {
    std::string out = "name=" + config_.name + " proto=" + std::string(to_string(config_.proto)) +
                      " mode=" + std::string(to_string(config_.mode));
    if (config_.mode == FramingMode::Fixed) out += " frame_size=" + std::to_string(config_.frame_size);
    out += " address=" + local().to_string();
    if (socket_->from_systemd()) out += " from=systemd";
    return out;
}

}  // namespace tcpecho

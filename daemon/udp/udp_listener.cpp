#include "daemon/udp/udp_listener.hpp"

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>

namespace tcpecho {

namespace {

[[noreturn]] void fail(const ListenerConfig& c, std::uint16_t port, const char* what, int err) {
    throw std::runtime_error("udp listener \"" + c.name + "\" on " + c.address + ":" + std::to_string(port) + ": " +
                             what + ": " + errno_text(err));
}

void set_int(const ListenerConfig& c, int fd, int level, int option, const char* name) {
    int one = 1;
    if (int err = sys_error(::setsockopt(fd, level, option, &one, sizeof one)); err != 0) fail(c, c.port, name, err);
}

// The options every served UDP socket needs, ours or systemd's.
void configure_socket(const ListenerConfig& c, int fd, const SocketAddress& addr) {
    if (addr.is_wildcard()) {
        // The destination of each datagram: the reply's source, and the own-address check.
        set_int(c, fd, IPPROTO_IP, IP_PKTINFO, "IP_PKTINFO");
        if (addr.family() == AF_INET6) set_int(c, fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, "IPV6_RECVPKTINFO");
    }
    // A wildcard socket would otherwise also get the multicast groups other programs on the
    // host joined; an echo never answers those anyway.
    int zero = 0;
    if (addr.family() == AF_INET6) {
        ::setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_ALL, &zero, sizeof zero);  // Linux >= 4.20
    }
    if (int err = sys_error(::setsockopt(fd, IPPROTO_IP, IP_MULTICAST_ALL, &zero, sizeof zero)); err != 0) {
        fail(c, addr.port(), "IP_MULTICAST_ALL", err);
    }
    // The kernel's count of datagrams dropped on a full receive queue comes with each datagram.
    set_int(c, fd, SOL_SOCKET, SO_RXQ_OVFL, "SO_RXQ_OVFL");
}

UniqueFd open_socket(const ListenerConfig& c, const SocketAddress& addr, bool reuseport) {
    const int s = ::socket(addr.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (int err = sys_error(s); err != 0) fail(c, addr.port(), "socket", err);
    UniqueFd fd(s);
    if (reuseport) set_int(c, fd.get(), SOL_SOCKET, SO_REUSEPORT, "SO_REUSEPORT");
    if (addr.family() == AF_INET6) {
        // "::" serves IPv4 too (dual stack), whatever net.ipv6.bindv6only says.
        int zero = 0;
        if (int err = sys_error(::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero)); err != 0) {
            fail(c, addr.port(), "IPV6_V6ONLY", err);
        }
    }
    configure_socket(c, fd.get(), addr);
    if (int err = sys_error(::bind(fd.get(), addr.get(), addr.length())); err != 0) fail(c, addr.port(), "bind", err);
    return fd;
}

}  // namespace

UdpListener::UdpListener(const ListenerConfig& config, std::shared_ptr<UdpSocketSet> sockets)
    : config_(config), sockets_(std::move(sockets)) {
    if (config_.limits.udp_rate_limit != 0) {
        limiter_ = std::make_shared<SourceRateLimiter>(config_.limits.udp_rate_limit,
                                                       config_.limits.effective_udp_burst());
    }
}

void UdpListener::keep_limiter_of(const UdpListener& previous) noexcept {
    const Limits& mine = config_.limits;
    const Limits& theirs = previous.config_.limits;
    if (limiter_ && previous.limiter_ && mine.udp_rate_limit == theirs.udp_rate_limit &&
        mine.effective_udp_burst() == theirs.effective_udp_burst()) {
        limiter_ = previous.limiter_;
    }
}

std::shared_ptr<UdpSocketSet> UdpSocketSet::open(const ListenerConfig& config, unsigned sockets) {
    auto addr = SocketAddress::parse(config.address, config.port);
    if (!addr) fail(config, config.port, "bad address", EINVAL);
    if (!addr->is_wildcard() && is_non_unicast(IpKey::from(addr->get()))) {
        throw std::runtime_error("udp listener \"" + config.name + "\": " + config.address +
                                 " is a broadcast or multicast address; an echo binds a unicast or wildcard one");
    }
    // First a plain bind, without SO_REUSEPORT: it fails if anyone holds the port, including
    // another tcpechod whose SO_REUSEPORT group we would otherwise join and split traffic
    // with. It also resolves port 0. Then the group is bound on the port it found free.
    SocketAddress group_addr;
    {
        UniqueFd check = open_socket(config, *addr, false);
        int err = 0;
        auto bound = SocketAddress::local_of(check.get(), &err);
        if (!bound) fail(config, config.port, "getsockname", err);
        group_addr = *bound;
    }
    std::vector<UniqueFd> fds;
    for (unsigned i = 0; i < std::max(sockets, 1U); ++i) fds.push_back(open_socket(config, group_addr, true));
    return std::shared_ptr<UdpSocketSet>(new UdpSocketSet(std::move(fds), group_addr, false));
}

std::shared_ptr<UdpSocketSet> UdpSocketSet::adopt(const std::string& name, UniqueFd fd, SocketAddress local) {
    ListenerConfig described;  // names the socket in error messages
    described.name = name;
    described.address = local.to_string();
    configure_socket(described, fd.get(), local);
    std::vector<UniqueFd> fds;
    fds.push_back(std::move(fd));
    return std::shared_ptr<UdpSocketSet>(new UdpSocketSet(std::move(fds), local, true));
}

std::string UdpListener::describe() const {
    std::string out = "name=" + config_.name + " proto=udp address=" + local().to_string() +
                      " sockets=" + std::to_string(sockets_->size());
    if (sockets_->from_systemd()) out += " from=systemd";
    if (limiter_) {
        out += " udp_rate_limit=" + std::to_string(config_.limits.udp_rate_limit) +
               "/s udp_burst=" + std::to_string(config_.limits.effective_udp_burst());
    } else {
        out += " udp_rate_limit=unlimited";
    }
    if (config_.limits.udp_max_datagram < 65535) out += " udp_max_datagram=" + std::to_string(config_.limits.udp_max_datagram);
    return out;
}

}  // namespace tcpecho

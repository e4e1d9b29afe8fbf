#include "lib/address.hpp"

#include "lib/fd.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

namespace tcpecho {

SocketAddress::SocketAddress() noexcept : storage_{}, length_(0) {}

std::optional<SocketAddress> SocketAddress::parse(std::string_view host, std::uint16_t port) {
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    std::string h(host);
    SocketAddress a;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&a.storage_);
    if (::inet_pton(AF_INET, h.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        a.length_ = sizeof(sockaddr_in);
        return a;
    }
    a.storage_ = {};
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.storage_);
    if (::inet_pton(AF_INET6, h.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        a.length_ = sizeof(sockaddr_in6);
        return a;
    }
    return std::nullopt;
}

SocketAddress SocketAddress::from_sockaddr(const sockaddr_storage& storage, socklen_t len) noexcept {
    SocketAddress a;
    a.storage_ = storage;
    a.length_ = len;
    return a;
}

std::optional<SocketAddress> SocketAddress::local_of(int fd, int* error) noexcept {
    SocketAddress a;
    a.length_ = sizeof a.storage_;
    const int err = sys_error(::getsockname(fd, reinterpret_cast<sockaddr*>(&a.storage_), &a.length_));
    if (error != nullptr) *error = err;
    if (err != 0) return std::nullopt;
    return a;
}

std::string SocketAddress::peer_text(int fd) {
    // getsockopt(SO_PEERNAME), not getpeername(): both end in the protocol's getname(), but
    // getpeername() asks it with peer = 1, for which inet_getname() refuses a socket in
    // TCP_CLOSE with ENOTCONN -- the state a connection reset by its peer is in when we log
    // it. SO_PEERNAME asks with peer = 2, which only needs the remote port to be still set
    // (net/core/sock.c, net/ipv4/af_inet.c), so the line about a reset names the peer. It
    // costs nothing per connection: no address is stored at accept. The kernel refuses a
    // buffer longer than the address (EINVAL), so the IPv6 size is tried before the IPv4 one.
    SocketAddress a;
    for (socklen_t want : {socklen_t{sizeof(sockaddr_in6)}, socklen_t{sizeof(sockaddr_in)}}) {
        a.length_ = want;
        if (::getsockopt(fd, SOL_SOCKET, SO_PEERNAME, &a.storage_, &a.length_) == 0) return a.to_string();
    }
    a.length_ = sizeof a.storage_;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&a.storage_), &a.length_) != 0) return "unknown";
    return a.to_string();
}

std::uint16_t SocketAddress::port() const noexcept {
    if (storage_.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
    if (storage_.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
    return 0;
}

bool SocketAddress::is_wildcard() const noexcept {
    if (storage_.ss_family == AF_INET) {
        return reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr.s_addr == htonl(INADDR_ANY);
    }
    if (storage_.ss_family == AF_INET6) {
        return IN6_IS_ADDR_UNSPECIFIED(&reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr);
    }
    return false;
}

bool SocketAddress::overlaps(const SocketAddress& other) const noexcept {
    auto covers = [](const SocketAddress& wild, const SocketAddress& any) {
        if (!wild.is_wildcard()) return false;
        return wild.family() == AF_INET6 || any.family() == AF_INET;  // "::" covers both families
    };
    if (covers(*this, other) || covers(other, *this)) return true;
    if (family() != other.family()) return false;
    if (family() == AF_INET) {
        return reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr.s_addr ==
               reinterpret_cast<const sockaddr_in*>(&other.storage_)->sin_addr.s_addr;
    }
    return std::memcmp(&reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr,
                       &reinterpret_cast<const sockaddr_in6*>(&other.storage_)->sin6_addr, sizeof(in6_addr)) == 0;
}

std::string SocketAddress::to_string() const {
    char host[INET6_ADDRSTRLEN] = "?";
    if (storage_.ss_family == AF_INET) {
        ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, host, sizeof host);
        return std::string(host) + ":" + std::to_string(port());
    }
    if (storage_.ss_family == AF_INET6) {
        ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, host, sizeof host);
        return "[" + std::string(host) + "]:" + std::to_string(port());
    }
    return "unknown";
}

}  // namespace tcpecho

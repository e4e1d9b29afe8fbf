// Numeric socket addresses (IPv4 and IPv6) and their printable form.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tcpecho {

class SocketAddress {
public:
    SocketAddress() noexcept;

    // Numeric IPv4 ("127.0.0.1") or IPv6 ("::1", "::", optionally in brackets) only: the daemon
    // binds what it is told, and never waits on DNS at start-up.
    static std::optional<SocketAddress> parse(std::string_view host, std::uint16_t port);
    static SocketAddress from_sockaddr(const sockaddr_storage& storage, socklen_t len) noexcept;
    // The local address a socket is bound to (resolves port 0 to the real port).
    static std::optional<SocketAddress> local_of(int fd, int* error = nullptr) noexcept;
    // "192.0.2.1:40000" for a connected socket, "unknown" when the kernel cannot say.
    static std::string peer_text(int fd);

    [[nodiscard]] const sockaddr* get() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }
    [[nodiscard]] socklen_t length() const noexcept { return length_; }
    [[nodiscard]] int family() const noexcept { return storage_.ss_family; }
    [[nodiscard]] std::uint16_t port() const noexcept;
    // 0.0.0.0 or ::
    [[nodiscard]] bool is_wildcard() const noexcept;
    // Whether binding both to the same port would fail: equal addresses, or a wildcard that
    // covers the other ("::" is bound dual-stack, so it covers IPv4 too). Ports are not compared.
    [[nodiscard]] bool overlaps(const SocketAddress& other) const noexcept;

    // "127.0.0.1:7007" or "[::1]:7007".
    [[nodiscard]] std::string to_string() const;

private:
    sockaddr_storage storage_;
    socklen_t length_;
};

}  // namespace tcpecho

// The sd_notify(3) protocol towards the service manager: readiness, status text, reloads,
// shutdown and watchdog keep-alives. Every call is a cheap no-op without $NOTIFY_SOCKET, so
// the daemon behaves the same under systemd, systemd-socket-activate, or a plain shell.
#pragma once

#include <cstdint>
#include <string_view>

namespace tcpecho {

class Notifier {
public:
    // Reads $NOTIFY_SOCKET and the watchdog settings ($WATCHDOG_USEC, $WATCHDOG_PID) once.
    Notifier();

    // 0 when the manager did not ask for keep-alives (or asked another PID for them).
    [[nodiscard]] std::uint64_t watchdog_usec() const noexcept { return watchdog_usec_; }

    void ready(std::string_view status) const noexcept;
    // RELOADING=1 with MONOTONIC_USEC= (the reload protocol of systemd >= 253; systemd 252
    // ignores the fields it does not know). Follow with ready() when done, failed or not.
    void reloading(std::string_view status) const noexcept;
    void stopping(std::string_view status) const noexcept;
    void status(std::string_view status) const noexcept;
    void watchdog() const noexcept;

private:
    void send(std::string_view fields, std::string_view status) const noexcept;

    std::uint64_t watchdog_usec_ = 0;
};

}  // namespace tcpecho

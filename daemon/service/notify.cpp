#include "daemon/service/notify.hpp"

#include <systemd/sd-daemon.h>

#include <cstdio>
#include <string>

#include "lib/clock.hpp"

namespace tcpecho {

Notifier::Notifier() {
    std::uint64_t usec = 0;
    // unset_environment=0: nothing to hide from; we start no children.
    if (::sd_watchdog_enabled(0, &usec) > 0) watchdog_usec_ = usec;
}

void Notifier::send(std::string_view fields, std::string_view status) const noexcept {
    try {
        std::string message(fields);
        if (!status.empty()) {
            if (!message.empty()) message += '\n';
            message += "STATUS=";
            // One line per field: a newline in the text would start a bogus field.
            for (char c : status) message += c == '\n' ? ' ' : c;
        }
        // Failure (no manager listening) is not ours to handle: the protocol is best-effort.
        (void)::sd_notify(0, message.c_str());
    } catch (...) {
        // Out of memory building a status line: skip this one.
    }
}

void Notifier::ready(std::string_view status) const noexcept { send("READY=1", status); }

void Notifier::reloading(std::string_view status) const noexcept {
    char fields[64];
    std::snprintf(fields, sizeof fields, "RELOADING=1\nMONOTONIC_USEC=%llu",
                  static_cast<unsigned long long>(monotonic_us()));
    send(fields, status);
}

void Notifier::stopping(std::string_view status) const noexcept { send("STOPPING=1", status); }

void Notifier::status(std::string_view status) const noexcept { send("", status); }

void Notifier::watchdog() const noexcept { send("WATCHDOG=1", ""); }

}  // namespace tcpecho

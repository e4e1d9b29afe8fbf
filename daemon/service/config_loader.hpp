// Reads tcpechod's configuration (the TOML schema of tcpechod.toml(5)), validated completely at
// load time. Every error names file:line:column and the key, so an admin can fix it without
// guessing. The only user of toml++.
#pragma once

#include <string>
#include <string_view>

#include "daemon/base/config.hpp"

namespace tcpecho {

// Parses and validates `text`; `source_name` is used in error messages. Throws ConfigError.
Config parse_config(std::string_view text, std::string_view source_name);
// Reads and parses a file. Throws ConfigError (also when the file cannot be read).
Config load_config_file(const std::string& path);

// The shipped etc/tcpechod.toml, compiled in; used when there is no file and no --config.
std::string_view embedded_default_config() noexcept;
inline constexpr std::string_view kEmbeddedConfigName = "<embedded default>";

// Resolves `workers = 0`.
unsigned effective_workers(const Config& config) noexcept;

}  // namespace tcpecho

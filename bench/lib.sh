# bench/lib.sh — shell helpers shared by bench/run.sh and bench/probe_speed.sh (sourced, not run).
# shellcheck shell=bash

# write_tcpechod_config FILE WORKERS: the tcpechod config every benchmark uses — one raw TCP
# listener on 127.0.0.1, port 0 (the server logs the port it got), no idle timeout, room for
# 20,000 connections, notice-level logging, 1 s drain on SIGTERM.
write_tcpechod_config() {
    cat >"$1" <<EOT
workers = $2
log_level = "notice"
drain_timeout = 1
[limits]
max_connections = 20000
idle_timeout = 0
[[listen]]
name = "echo"
address = "127.0.0.1"
port = 0
proto = "tcp"
mode = "raw"
EOT
}

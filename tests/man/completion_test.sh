#!/usr/bin/env bash
# The bash completions load under bash-completion and complete what they should.
# usage: completion_test.sh COMPLETION_DIR   (exit 77 without bash-completion)
set -u
dir=$1
bc=/usr/share/bash-completion/bash_completion
[ -r "$bc" ] || { echo "bash-completion not installed: skipped"; exit 77; }
# shellcheck disable=SC1090
source "$bc"
source "$dir/tcpechod"
source "$dir/tcpecho-probe"
fail=0

# complete_line FUNCTION WORD... : COMPREPLY for the last word
complete_line() {
    local fn=$1
    shift
    COMP_WORDS=("$@")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMP_LINE="$*"
    COMP_POINT=${#COMP_LINE}
    COMPREPLY=()
    "$fn" "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
}

expect() {  # expect DESCRIPTION EXPECTED  (sorted, space-separated)
    local got
    got=$(printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' ' | sed 's/ $//')
    if [ "$got" = "$2" ]; then
        echo "ok: $1 -> $got"
    else
        echo "FAIL: $1: expected '$2', got '$got'"
        fail=1
    fi
}

complete_line _tcpechod tcpechod --ch
expect "tcpechod --ch" "--check-config"
complete_line _tcpecho_probe tcpecho-probe --mode l
expect "tcpecho-probe --mode l" "length line"
complete_line _tcpecho_probe tcpecho-probe --workload ""
expect "tcpecho-probe --workload" "pingpong stream"
complete_line _tcpecho_probe tcpecho-probe --recv lo
expect "tcpecho-probe --recv lo" "loop lowat="
complete_line _tcpecho_probe tcpecho-probe --split
expect "tcpecho-probe --split" "--split --split-delay"
complete_line _tcpecho_probe tcpecho-probe -s ""
expect "tcpecho-probe -s (a size)" ""

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
touch "$tmp/a.toml" "$tmp/b.txt"
cd "$tmp" || exit 1
complete_line _tcpechod tcpechod --config ""
expect "tcpechod --config (files)" "a.toml"
exit $fail

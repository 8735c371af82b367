# Sourced by demo.sh and test.sh: install what they need on a fresh Debian/Ubuntu machine.
#
#   need TOOL PACKAGE     the command TOOL (or, when it starts with /, the file TOOL) comes from
#                         the Debian package PACKAGE
#   need_installed        installs every missing PACKAGE at once (as root: apt-get), or, when not
#                         root, stops at once with the one command that installs them
#
# Set INVITE_NO_INSTALL=1 to only check (never run apt-get).

invite_missing=()

need() {
    case "$1" in
    /*) [ -e "$1" ] || invite_missing+=("$2") ;;
    *) command -v "$1" >/dev/null 2>&1 || invite_missing+=("$2") ;;
    esac
}

need_installed() {
    ((${#invite_missing[@]})) || return 0
    local pkgs
    pkgs=$(printf '%s\n' "${invite_missing[@]}" | sort -u | tr '\n' ' ')
    pkgs=${pkgs% }
    local cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $pkgs"
    if [ "$(id -u)" != 0 ] || [ "${INVITE_NO_INSTALL:-0}" = 1 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "$(basename "$0"): missing packages: $pkgs. Install them first:" >&2
        echo "    sudo sh -c '$cmd'" >&2
        exit 1
    fi
    echo "$(basename "$0"): installing $pkgs" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq $pkgs >/dev/null
}

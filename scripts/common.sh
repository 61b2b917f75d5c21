# Shared by scripts/test.sh and scripts/demo.sh (sourced, not run).

step() { printf '\n==> %s\n' "$*"; }

die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Install the Debian packages in "$@" that are not installed yet.
ensure_apt_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    echo "already installed: $*"
    return
  fi
  echo "installing: ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# Node.js 20+ and npm for the test OpenID Provider (oidc-provider 9). The packages are only
# installed when the commands are missing, so a newer Node.js from another source is kept.
ensure_node() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    ensure_apt_packages nodejs npm
  fi
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  [ "$major" -ge 20 ] || die "Node.js 20 or newer is needed by tests/idp (oidc-provider 9); found $(node --version)"
}

# tests/idp/node_modules from the committed lockfile, unless already there.
ensure_idp_modules() {
  if [ -f tests/idp/node_modules/oidc-provider/package.json ]; then
    echo "tests/idp/node_modules is installed"
  else
    npm ci --prefix tests/idp --no-audit --no-fund --loglevel=error
  fi
}

# Build dependencies of the crate (pingora, samael with xmlsec, bindgen).
BUILD_PACKAGES=(build-essential pkg-config cmake libclang-dev libssl-dev libxml2-dev libxmlsec1-dev)

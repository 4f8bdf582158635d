# Sourced by the fetch scripts (not run): `make_venv DIR` creates a Python virtual environment in
# DIR, installing Debian's python3-venv first when the venv module is missing and we are root (a
# fresh CI machine); otherwise it says what to install and fails.
make_venv() {
  local dir=$1
  if python3 -m venv "$dir" >&2; then
    return 0
  fi
  # Debian ships venv separately.
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq >&2 && apt-get install -y -qq python3-venv >&2
    rm -rf "$dir"
    python3 -m venv "$dir" >&2
  else
    echo "python3's venv module is needed (Debian: apt-get install python3-venv)" >&2
    return 1
  fi
}

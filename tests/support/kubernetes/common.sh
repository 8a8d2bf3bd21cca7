# Sourced by the scripts here.

# Polls `$@` every 100 ms for up to $1 seconds.
until_ok() {
  local seconds=$1
  shift
  for _ in $(seq $((seconds * 10))); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}

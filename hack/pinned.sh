# Sourced by the build scripts of the pinned Go modules under hack/ (the
# control plane, kwok, the tools): each builds its binaries into an output
# directory once, and again only when its go.mod, go.sum or script change.
#
#   pinned_init DEFAULT_OUT [OUT]   sets here (the script's directory), out
#                                   (absolute, created) and stamp
#   pinned_fresh STAMPFILE BIN...   true when every BIN is in out and
#                                   out/STAMPFILE holds the stamp

pinned_init() {
  here=$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)
  out=${2:-$1}
  mkdir -p "$out"
  out=$(cd "$out" && pwd)
  stamp=$(cat "$here/go.mod" "$here/go.sum" "${BASH_SOURCE[1]}" | sha256sum | cut -d' ' -f1)
}

pinned_fresh() {
  local file=$1 b
  shift
  for b in "$@"; do [[ -x $out/$b ]] || return 1; done
  [[ "$(cat "$out/$file" 2>/dev/null)" == "$stamp" ]]
}

# Sourced by the fetch_*.sh scripts: npm_unpack PACKAGE@VERSION DIR unpacks a pinned npm package into
# DIR/package (npm pack prints the name of the tarball it writes).
npm_unpack() {
  local tgz
  tgz=$(cd "$2" && npm pack "$1" --silent | tail -n 1)
  tar xzf "$2/$tgz" -C "$2"
}

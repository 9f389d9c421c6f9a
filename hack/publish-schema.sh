#!/usr/bin/env bash
# Publishes the scenario schema (schema/*.cue, exactly as faultline embeds
# it) as the CUE module faultline.dev/schema@v0 with `cue mod publish`, the
# cue pinned in go.mod (go tool cue).
#
#   CUE_REGISTRY=faultline.dev=registry.example.com/cue make publish-schema
#   CUE_REGISTRY=127.0.0.1:5000+insecure SCHEMA_VERSION=v0.1.0 hack/publish-schema.sh
#
# CUE_REGISTRY says where, in cue's own syntax (cue help registryconfig);
# SCHEMA_VERSION defaults to schema.ModuleVersion (schema/module.go).
# A published version is immutable: when SCHEMA_VERSION is already in the
# registry it must hold the same files (then nothing is done); other files
# are refused: bump schema.ModuleVersion. cue mod publish itself would
# overwrite the tag.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if [[ -z "${CUE_REGISTRY:-}" ]]; then
	echo "publish-schema: set CUE_REGISTRY to the registry to publish to, e.g. CUE_REGISTRY=faultline.dev=registry.example.com/cue (or 127.0.0.1:5000+insecure)" >&2
	exit 2
fi
version="${SCHEMA_VERSION:-$(sed -n 's/^const ModuleVersion = "\(.*\)"$/\1/p' schema/module.go)}"
if [[ ! "$version" =~ ^v0\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]]; then
	echo "publish-schema: version \"$version\" is not a v0 semver (faultline.dev/schema@v0 takes v0.MINOR.PATCH)" >&2
	exit 2
fi
cue="${CUE:-$(go tool -n cue)}"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mod="$tmp/module"
mkdir -p "$mod/cue.mod"
cp schema/*.cue "$mod/"
cat >"$mod/cue.mod/module.cue" <<MOD
module: "faultline.dev/schema@v0"
language: version: "v0.17.0"
source: kind: "self"
MOD

# Is the version already there? A module that depends on it and imports it
# makes cue fetch it into a fresh cache.
probe="$tmp/probe"
mkdir -p "$probe/cue.mod"
cat >"$probe/cue.mod/module.cue" <<MOD
module: "faultline.local/probe@v0"
language: version: "v0.17.0"
deps: "faultline.dev/schema@v0": {v: "$version", default: true}
MOD
printf 'package probe\n\nimport "faultline.dev/schema"\n\n_probe: schema.#Scenario\n' >"$probe/probe.cue"
if out="$(cd "$probe" && CUE_CACHE_DIR="$tmp/cache" "$cue" vet -c=false . 2>&1)"; then
	have="$(find "$tmp/cache" -type d -path "*faultline.dev/schema@$version" | head -1)"
	if [[ -z "$have" ]]; then
		echo "publish-schema: faultline.dev/schema@$version resolves, but cue's cache does not show its files" >&2
		exit 1
	fi
	for f in "$mod"/*.cue; do
		if ! cmp -s "$f" "$have/$(basename "$f")"; then
			echo "publish-schema: faultline.dev/schema@$version is already published with other content ($(basename "$f") differs): a published version is immutable; bump ModuleVersion in schema/module.go (and SCHEMA_VERSION)" >&2
			exit 1
		fi
	done
	echo "publish-schema: faultline.dev/schema@$version is already published with these files: nothing to do"
	exit 0
elif ! grep -q "module not found" <<<"$out"; then
	echo "publish-schema: cannot tell whether faultline.dev/schema@$version is published:" >&2
	echo "$out" >&2
	exit 1
fi

cd "$mod"
"$cue" mod publish "$version"

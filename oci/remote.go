package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
	"oras.land/oras-go/v2/registry/remote/retry"

	"faultline.dev/faultline/internal/buildinfo"
)

// Options say how to reach a registry.
type Options struct {
	// PlainHTTP talks HTTP instead of HTTPS. Loopback registries
	// (localhost, 127.0.0.0/8, ::1) use plain HTTP anyway, as docker does.
	PlainHTTP bool
	// Credential gives the credentials for a registry host; nil reads the
	// Docker config file ($DOCKER_CONFIG/config.json, else
	// ~/.docker/config.json) and its credential helpers, as docker and oras
	// do.
	Credential auth.CredentialFunc
	// Progress receives one line per step (stderr in the CLI); nil for none.
	Progress io.Writer
}

func (o Options) logf(format string, args ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, format+"\n", args...)
	}
}

// Target is where a version is pushed: a repository of a registry.
// *remote.Repository is one; tests wrap it.
type Target interface {
	content.Storage
	Resolve(ctx context.Context, reference string) (ocispec.Descriptor, error)
	Tag(ctx context.Context, desc ocispec.Descriptor, reference string) error
}

// InfraError marks a failure to talk to the registry (network, auth,
// server errors), as opposed to invalid content or a refused push.
type InfraError struct{ Err error }

func (e *InfraError) Error() string { return e.Err.Error() }
func (e *InfraError) Unwrap() error { return e.Err }

func infra(err error) error {
	if err == nil || errors.Is(err, ErrInvalid) || errors.Is(err, ErrVersionExists) || errors.Is(err, context.Canceled) {
		return err
	}
	return &InfraError{err}
}

// ParseReference parses REGISTRY/REPO[:TAG|@DIGEST]. A tag written as a
// semver with build metadata ("1.0.0+b1") is accepted and turned into its
// registry form (Tag).
func ParseReference(s string) (registry.Reference, error) {
	if i := strings.LastIndex(s, ":"); i > strings.LastIndex(s, "/") && !strings.Contains(s, "@") {
		s = s[:i] + Tag(s[i:])
	}
	ref, err := registry.ParseReference(s)
	if err != nil {
		return registry.Reference{}, fmt.Errorf("%q is not a registry reference: want REGISTRY/REPO, REGISTRY/REPO:VERSION or REGISTRY/REPO@sha256:..., e.g. 127.0.0.1:5000/chaos/checkout-jitter:1.0.0 (%v)", s, err)
	}
	return ref, nil
}

// LooksLikeReference says whether s names a registry rather than a local
// path: its first element is a host (has a '.' or ':', or is localhost),
// as docker decides, and it parses as a reference.
func LooksLikeReference(s string) bool {
	host, _, ok := strings.Cut(s, "/")
	if !ok || !(strings.ContainsAny(host, ".:") || host == "localhost") || strings.HasPrefix(s, ".") {
		return false
	}
	_, err := ParseReference(s)
	return err == nil
}

// isLoopback says whether a registry host (host or host:port) is on this
// machine.
func isLoopback(host string) bool {
	h := host
	if sh, _, err := net.SplitHostPort(host); err == nil {
		h = sh
	}
	h = strings.Trim(h, "[]")
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// Repository opens the repository of a reference with the options' transport
// and credentials.
func Repository(ref registry.Reference, opts Options) (*remote.Repository, error) {
	repo, err := remote.NewRepository(ref.Registry + "/" + ref.Repository)
	if err != nil {
		return nil, err
	}
	repo.PlainHTTP = opts.PlainHTTP || isLoopback(ref.Registry)
	cred := opts.Credential
	if cred == nil {
		store, err := credentials.NewStoreFromDocker(credentials.StoreOptions{})
		if err != nil {
			return nil, fmt.Errorf("reading the Docker config file for registry credentials: %w (fix or remove it, or set DOCKER_CONFIG)", err)
		}
		cred = credentials.Credential(store)
	}
	client := &auth.Client{
		Client:     retry.DefaultClient,
		Cache:      auth.NewCache(),
		Credential: cred,
		Header:     map[string][]string{"User-Agent": {"faultline/" + buildinfo.Version()}},
	}
	repo.Client = client
	repo.MaxMetadataBytes = maxManifestBytes
	return repo, nil
}

// PushResult says what Push did.
type PushResult struct {
	// Reference is REGISTRY/REPO:TAG.
	Reference string `json:"reference"`
	Tag       string `json:"tag"`
	// Digest is the manifest's digest: REGISTRY/REPO@DIGEST pulls exactly
	// this version.
	Digest    digest.Digest `json:"digest"`
	MediaType string        `json:"mediaType"`
	Size      int64         `json:"size"`
	// Unchanged is true when the tag already held the same content: nothing
	// was uploaded.
	Unchanged bool `json:"unchanged"`
	// Uploaded and Skipped count the blobs sent and those the registry had.
	Uploaded int `json:"uploaded"`
	Skipped  int `json:"skipped"`
	// Bytes is what was uploaded.
	Bytes int64 `json:"bytes"`
}

// Push pushes the compiled version in dir to repo (REGISTRY/REPO; a tag, if
// given, must be the version's), tagged with its version.
func Push(ctx context.Context, dir, repoRef string, opts Options) (*PushResult, error) {
	ref, err := ParseReference(repoRef)
	if err != nil {
		return nil, err
	}
	v, err := ReadDir(dir)
	if err != nil {
		return nil, err
	}
	tag := Tag(v.Plan.Version)
	if ref.Reference != "" && ref.Reference != tag {
		return nil, fmt.Errorf("%s: a compiled version is tagged with its scenario version (%s), not %q: give REGISTRY/REPO without a tag", repoRef, tag, ref.Reference)
	}
	repo, err := Repository(ref, opts)
	if err != nil {
		return nil, err
	}
	res, err := PushTo(ctx, v, repo, tag, opts)
	if res != nil {
		res.Reference = ref.Registry + "/" + ref.Repository + ":" + tag
	}
	return res, err
}

// PushTo pushes v into t under tag: refused when the tag holds other content,
// a no-op when it holds the same; otherwise blobs, then the manifest by
// digest, then the tag.
func PushTo(ctx context.Context, v *Version, t Target, tag string, opts Options) (*PushResult, error) {
	data, desc, blobs, err := v.Manifest()
	if err != nil {
		return nil, err
	}
	res := &PushResult{Tag: tag, Digest: desc.Digest, MediaType: desc.MediaType, Size: desc.Size}
	name := v.Plan.Scenario + "@" + v.Plan.Version

	existing, err := t.Resolve(ctx, tag)
	switch {
	case err == nil:
		same, err := sameContent(ctx, t, existing, v, tag)
		if err != nil {
			return nil, err
		}
		res.Unchanged, res.Digest, res.MediaType, res.Size = true, existing.Digest, existing.MediaType, existing.Size
		if existing.Digest == desc.Digest {
			opts.logf("%s is already pushed as %s (%s): nothing to do", name, tag, existing.Digest)
		} else {
			opts.logf("%s is already pushed as %s (%s) from the same scenario content, compiled by %s: nothing to do", name, tag, existing.Digest, same)
		}
		return res, nil
	case errors.Is(err, errdef.ErrNotFound):
	default:
		return nil, infra(fmt.Errorf("looking up tag %s: %w", tag, err))
	}

	// Blobs first: the config and every file, each once.
	order := []ocispec.Descriptor{ocispec.DescriptorEmptyJSON}
	var m ocispec.Manifest
	_ = json.Unmarshal(data, &m)
	order = append(order, m.Layers...)
	done := map[digest.Digest]bool{}
	for _, d := range order {
		if done[d.Digest] {
			continue
		}
		done[d.Digest] = true
		d := ocispec.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size}
		title := "config"
		for _, l := range m.Layers {
			if l.Digest == d.Digest {
				title = l.Annotations[ocispec.AnnotationTitle]
				break
			}
		}
		ok, err := t.Exists(ctx, d)
		if err != nil {
			return nil, infra(fmt.Errorf("checking blob %s (%s): %w", d.Digest, title, err))
		}
		if ok {
			res.Skipped++
			continue
		}
		opts.logf("uploading %s (%d bytes, %s)", title, d.Size, d.Digest)
		if err := t.Push(ctx, d, bytes.NewReader(blobs[d.Digest])); err != nil && !errors.Is(err, errdef.ErrAlreadyExists) {
			return nil, infra(fmt.Errorf("uploading %s: %w", title, err))
		}
		res.Uploaded++
		res.Bytes += d.Size
	}
	// Then the manifest, by digest: no tag yet.
	opts.logf("uploading the manifest (%d bytes, %s)", desc.Size, desc.Digest)
	if err := t.Push(ctx, desc, bytes.NewReader(data)); err != nil && !errors.Is(err, errdef.ErrAlreadyExists) {
		return nil, infra(fmt.Errorf("uploading the manifest: %w", err))
	}
	// Last, the tag.
	if err := t.Tag(ctx, desc, tag); err != nil {
		return nil, infra(fmt.Errorf("tagging %s as %s: %w", desc.Digest, tag, err))
	}
	opts.logf("pushed %s as %s (%s)", name, tag, desc.Digest)
	return res, nil
}

// sameContent fetches the manifest a tag points at and checks it is a
// compiled version of the same scenario content as v. It returns the
// faultline version that compiled it, or ErrVersionExists.
func sameContent(ctx context.Context, t Target, existing ocispec.Descriptor, v *Version, tag string) (string, error) {
	if existing.MediaType != ocispec.MediaTypeImageManifest {
		return "", fmt.Errorf("tag %s already holds a %s, not a faultline compiled version: push to another repository: %w", tag, existing.MediaType, ErrVersionExists)
	}
	if existing.Size > maxManifestBytes {
		return "", fmt.Errorf("tag %s holds a %d-byte manifest: not a faultline compiled version: %w", tag, existing.Size, ErrVersionExists)
	}
	b, err := content.FetchAll(ctx, t, existing)
	if err != nil {
		return "", infra(fmt.Errorf("fetching the manifest of tag %s: %w", tag, err))
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(b, &m); err != nil || m.ArtifactType != ArtifactType {
		return "", fmt.Errorf("tag %s already holds something that is not a faultline compiled version: push to another repository: %w", tag, ErrVersionExists)
	}
	old := m.Annotations[AnnotationContentHash]
	if old != v.Plan.ContentHash {
		return "", fmt.Errorf("%s@%s is already pushed as tag %s (%s) from different content (%s, now %s): a compiled version is immutable; bump the version (`faultline version check OLD NEW` says which bump the change needs): %w",
			v.Plan.Scenario, v.Plan.Version, tag, existing.Digest, short(old), short(v.Plan.ContentHash), ErrVersionExists)
	}
	return "faultline " + m.Annotations[AnnotationFaultlineVersion], nil
}

func short(h string) string {
	if len(h) > len("sha256:")+12 {
		return h[:len("sha256:")+12]
	}
	return h
}

// Fetch resolves ref (REGISTRY/REPO:VERSION or REGISTRY/REPO@sha256:...) and
// returns the version it holds, every file verified, and the manifest's
// digest.
func Fetch(ctx context.Context, refStr string, opts Options) (*Version, digest.Digest, error) {
	ref, err := ParseReference(refStr)
	if err != nil {
		return nil, "", err
	}
	if ref.Reference == "" {
		return nil, "", fmt.Errorf("%s: say which version: REGISTRY/REPO:VERSION or REGISTRY/REPO@sha256:...", refStr)
	}
	repo, err := Repository(ref, opts)
	if err != nil {
		return nil, "", err
	}
	desc, err := repo.Resolve(ctx, ref.Reference)
	if err != nil {
		if errors.Is(err, errdef.ErrNotFound) {
			return nil, "", infra(fmt.Errorf("%s: not found in the registry (faultline push puts it there): %w", refStr, err))
		}
		return nil, "", infra(fmt.Errorf("resolving %s: %w", refStr, err))
	}
	if desc.MediaType != ocispec.MediaTypeImageManifest {
		return nil, "", fmt.Errorf("%s is a %s, not a faultline compiled version (an OCI image manifest of type %s): %w", refStr, desc.MediaType, ArtifactType, ErrInvalid)
	}
	if desc.Size > maxManifestBytes {
		return nil, "", fmt.Errorf("%s: a %d-byte manifest is too large for a compiled version: %w", refStr, desc.Size, ErrInvalid)
	}
	opts.logf("pulling %s (%s)", refStr, desc.Digest)
	b, err := content.FetchAll(ctx, repo, desc) // checks size and digest
	if err != nil {
		return nil, "", infra(fmt.Errorf("fetching the manifest of %s: %w", refStr, err))
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, "", fmt.Errorf("%s: the manifest is not JSON (%v): %w", refStr, err, ErrInvalid)
	}
	fetch := func(ctx context.Context, d ocispec.Descriptor) ([]byte, error) {
		opts.logf("downloading %s (%d bytes)", d.Annotations[ocispec.AnnotationTitle], d.Size)
		b, err := content.FetchAll(ctx, repo, ocispec.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size})
		if errors.Is(err, content.ErrMismatchedDigest) || errors.Is(err, content.ErrTrailingData) {
			return nil, fmt.Errorf("%v: %w", err, ErrInvalid)
		}
		return b, infra(err)
	}
	v, err := fromManifest(ctx, refStr, &m, fetch)
	if err != nil {
		return nil, "", err
	}
	return v, desc.Digest, nil
}

// PullResult says what Pull did.
type PullResult struct {
	Digest    digest.Digest `json:"digest"`
	Dir       string        `json:"dir"`
	Scenario  string        `json:"scenario"`
	Version   string        `json:"version"`
	Files     int           `json:"files"`
	Unchanged bool          `json:"unchanged"`
}

// Pull fetches ref into dir ("" means out/<name>/<version>), byte for byte,
// every file checked against plan.json.
func Pull(ctx context.Context, ref, dir string, opts Options) (*PullResult, error) {
	v, d, err := Fetch(ctx, ref, opts)
	if err != nil {
		return nil, err
	}
	if dir == "" {
		dir = "out/" + v.Plan.Scenario + "/" + v.Plan.Version
	}
	unchanged, err := WriteDir(v, dir)
	if err != nil {
		return nil, err
	}
	return &PullResult{Digest: d, Dir: dir, Scenario: v.Plan.Scenario, Version: v.Plan.Version, Files: len(v.Files), Unchanged: unchanged}, nil
}

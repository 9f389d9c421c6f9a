// Package e2e holds faultline's end-to-end tests against a test cluster with Chaos Mesh's real
// chaos-controller-manager and a real kube-apiserver (see package harness and the README in
// this directory). Run them with `make e2e`; they are not part of `make test`.
package e2e

package kube

import "k8s.io/apimachinery/pkg/runtime/schema"

// SkipConfigMap makes b apply the TestRun without its ConfigMap: the test API server
// (internal/kubetest) serves only CRDs, no core API group, so ConfigMaps cannot be created there.
func SkipConfigMap(b *Backend) { b.skipConfigMap = true }

// UsePods makes b read pods from r instead of core/v1 pods: the test API server serves no core
// API group, so tests keep the k6-operator stand-in's pods in a stand-in resource
// (kubetestctl.Pods).
func UsePods(b *Backend, r schema.GroupVersionResource) { b.pods = r }

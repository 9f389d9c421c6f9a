package kube

// SkipConfigMap makes b apply the TestRun without its ConfigMap: the test API server
// (internal/kubetest) serves only CRDs, no core API group, so ConfigMaps cannot be created there.
func SkipConfigMap(b *Backend) { b.skipConfigMap = true }

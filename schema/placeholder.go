package schema

import (
	"strconv"
	"strings"
)

// Placeholders that `faultline import` writes where a Chaos Mesh manifest
// says nothing a scenario needs: the service's URL and the load's requests.
// vet reports each until it is replaced, naming what to fill in. The host is
// under ".invalid" (RFC 2606), which no real service has.
const (
	PlaceholderHost = "fill-in-the-target.invalid"
	PlaceholderURL  = "http://" + PlaceholderHost
	PlaceholderPath = "/fill-in-the-requests"
)

// checkPlaceholders reports the placeholders faultline import left in s.
func checkPlaceholders(s *Scenario, add func(path, format string, args ...any)) {
	if strings.Contains(s.Target.URL, PlaceholderHost) {
		add("target.url", "faultline import left a placeholder here: set the base URL of the service the faults are injected into (the load goes there)")
	}
	for i, r := range s.Load.Requests {
		if strings.HasPrefix(r.Path, PlaceholderPath) {
			add("load.requests."+strconv.Itoa(i)+".path", "faultline import left a placeholder here: set the requests the load sends (path, method, expect), and size the load (executor, vus or rate, duration) to your service")
		}
	}
}

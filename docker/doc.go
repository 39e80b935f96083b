// Package docker owns the container images of the docker environment: the
// Dockerfiles for the fake services and for Toxiproxy (each FROM scratch
// with the static poolproof binary, so no registry is needed) and the
// compose file for exploring by hand. The Dockerfiles are embedded so that
// env.NewDocker builds the very same images wherever it runs, checkout
// or not.
package docker

import _ "embed"

// FakeserverDockerfile is fakeserver.Dockerfile: one fake service from the
// poolproof binary found next to it in the build context.
//
//go:embed fakeserver.Dockerfile
var FakeserverDockerfile []byte

// ToxiproxyDockerfile is toxiproxy.Dockerfile: Toxiproxy's API from the
// poolproof binary found next to it in the build context.
//
//go:embed toxiproxy.Dockerfile
var ToxiproxyDockerfile []byte

// Container ports the images and the harness agree on.
const (
	ServicePort   = 8443 // a fake service
	AdminPort     = 9000 // a fake service's admin API
	ToxiproxyPort = 8474 // Toxiproxy's API
)

// ProxyPorts are the ports the Toxiproxy proxies listen on inside the
// Toxiproxy container, by service; the images expose them and compose.yaml
// publishes them.
var ProxyPorts = map[string]int{"payment": 21001, "inventory": 21002, "notification": 21003}

// Package comparison puts several clients' certificates side by side: one
// table, checks by client, the way Autobahn shows implementations by case,
// with each failure explained in the words of the client's library.
//
// Which clients, and what to say of their failures, is data: a manifest
// (Load) lists each client, a built-in one by name or a driver by its
// command and contract, with a sentence per check its configuration is
// known to fail. The poolproof compare command certifies each and writes
// the table (Write); README.md's table is its output.
package comparison

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Entry is one client of the comparison.
type Entry struct {
	// Name is the column's title, e.g. "requests, typical".
	Name string `json:"name"`
	// Client names a built-in client (reference, plain, retrying); empty
	// for a driver.
	Client string `json:"client,omitempty"`
	// Driver is the command line that runs a driver, e.g.
	// "/usr/bin/python3 drivers/python/requests_typical.py".
	Driver string `json:"driver,omitempty"`
	// Contract is the contract file the client is held to; empty: the
	// built-in client's own, or for a driver the default contract.
	Contract string `json:"contract,omitempty"`
	// Library says what the client is built on, e.g. "requests 2.28.1".
	Library string `json:"library,omitempty"`
	// Why explains, per check id, why this configuration fails that check,
	// in words a user of the library knows. A failure with no sentence
	// here is explained by the verdict's own reason.
	Why map[string]string `json:"why,omitempty"`
}

// Manifest is the list of clients compared.
type Manifest struct {
	Clients []Entry `json:"clients"`
}

// ErrInvalidManifest is wrapped by Load's errors about the file's content.
var ErrInvalidManifest = errors.New("invalid comparison manifest")

// Load reads a manifest file (JSON). Every entry needs a name and exactly
// one of client and driver; names are unique.
func Load(path string) (Manifest, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Manifest{}, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return Manifest{}, fmt.Errorf("%s: %w: %w", path, ErrInvalidManifest, err)
	}
	if len(m.Clients) == 0 {
		return Manifest{}, fmt.Errorf(`%s: %w: no clients: write {"clients": [{"name": ..., "client": "reference"}, ...]}`, path, ErrInvalidManifest)
	}
	seen := map[string]bool{}
	for i, e := range m.Clients {
		switch {
		case strings.TrimSpace(e.Name) == "":
			return Manifest{}, fmt.Errorf("%s: %w: clients[%d] has no name", path, ErrInvalidManifest, i)
		case seen[e.Name]:
			return Manifest{}, fmt.Errorf("%s: %w: clients[%d]: the name %q is used twice", path, ErrInvalidManifest, i, e.Name)
		case (e.Client == "") == (e.Driver == ""):
			return Manifest{}, fmt.Errorf("%s: %w: clients[%d] (%s): give exactly one of client and driver", path, ErrInvalidManifest, i, e.Name)
		}
		seen[e.Name] = true
	}
	return m, nil
}

// Only narrows the manifest to the named clients, in the manifest's order;
// it fails on a name the manifest does not have.
func (m Manifest) Only(names []string) (Manifest, error) {
	if len(names) == 0 {
		return m, nil
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var out Manifest
	for _, e := range m.Clients {
		if want[e.Name] {
			out.Clients = append(out.Clients, e)
			delete(want, e.Name)
		}
	}
	for n := range want {
		var all []string
		for _, e := range m.Clients {
			all = append(all, e.Name)
		}
		return Manifest{}, fmt.Errorf("no client %q in the manifest; it has %s", n, strings.Join(all, ", "))
	}
	return out, nil
}

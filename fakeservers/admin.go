package fakeservers

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
)

// adminHandler serves the admin API on its own listener, so faults and stats
// never share connections (or connection counts) with the service.
func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+AdminHealthPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "ok")
	})
	mux.HandleFunc("GET "+AdminStatsPath, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Stats())
	})
	mux.HandleFunc("GET "+AdminConnsPath, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.ConnCounts())
	})
	mux.HandleFunc("POST "+AdminResetPath, func(w http.ResponseWriter, r *http.Request) {
		// An optional body {"seed": N} reseeds the draws; without one the
		// server's own seed is used again.
		var body struct {
			Seed *int64 `json:"seed"`
		}
		dec := json.NewDecoder(io.LimitReader(r.Body, 1<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil && !errors.Is(err, io.EOF) {
			http.Error(w, "reset"+describeJSONError(err), http.StatusBadRequest)
			return
		}
		if body.Seed != nil {
			s.ResetSeed(*body.Seed)
		} else {
			s.Reset()
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST "+AdminCloseIdlePath, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.CloseIdle())
	})
	mux.HandleFunc("GET "+AdminFaultsPath, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Faults())
	})
	mux.HandleFunc("POST "+AdminFaultsPath, func(w http.ResponseWriter, r *http.Request) {
		faults, err := decodeFaults(r.Body)
		if err == nil {
			err = s.SetFaults(faults...)
		}
		if err != nil {
			writeAdminError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, s.Faults())
	})
	mux.HandleFunc("DELETE "+AdminFaultsPath, func(w http.ResponseWriter, _ *http.Request) {
		s.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET "+AdminKeepAlivePath, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.KeepAlive())
	})
	mux.HandleFunc("POST "+AdminKeepAlivePath, func(w http.ResponseWriter, r *http.Request) {
		var ka KeepAlive
		dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ka); err != nil {
			http.Error(w, "keepalive"+describeJSONError(err), http.StatusBadRequest)
			return
		}
		if err := s.SetKeepAlive(ka); err != nil {
			writeAdminError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, s.KeepAlive())
	})
	mux.HandleFunc("GET "+AdminProtocolPath, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, Protocol{HTTP2: s.HTTP2()})
	})
	mux.HandleFunc("POST "+AdminProtocolPath, func(w http.ResponseWriter, r *http.Request) {
		var p Protocol
		dec := json.NewDecoder(io.LimitReader(r.Body, 1<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil {
			http.Error(w, "protocol"+describeJSONError(err), http.StatusBadRequest)
			return
		}
		if err := s.SetHTTP2(p.HTTP2); err != nil {
			writeAdminError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, Protocol{HTTP2: s.HTTP2()})
	})
	mux.HandleFunc("GET "+AdminCAPath, func(w http.ResponseWriter, _ *http.Request) {
		if !s.cfg.TLS || s.ca == nil {
			http.Error(w, "TLS is off for this service; start it with TLS to get a CA", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/x-pem-file")
		_, _ = w.Write(s.ca.PEM())
	})
	return mux
}

func writeAdminError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	if errors.Is(err, ErrInvalidFault) || errors.Is(err, ErrInvalidConfig) {
		status = http.StatusBadRequest
	}
	http.Error(w, adminMessage(err), status)
}

// adminMessage drops the sentinel prefix: the admin client wants the field
// and the problem, e.g. "faults[0].status: 418 is not one of ...".
func adminMessage(err error) string {
	msg := err.Error()
	for _, sentinel := range []error{ErrInvalidFault, ErrInvalidConfig} {
		if p := sentinel.Error() + ": "; len(msg) > len(p) && msg[:len(p)] == p {
			return msg[len(p):]
		}
	}
	return msg
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

package node

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// handleEvents streams server-sent events: "entry" for every entry the
// node stores (an EntryView), "crisis" when the crisis state it knows
// changes (a CrisisView), and a comment every 15 s to keep proxies open.
func (n *Node) handleEvents(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "no-stream", "streaming unsupported")
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	sub := n.store.Subscribe(64)
	defer sub.Close()
	send := func(event string, v any) bool {
		b, err := json.Marshal(v)
		if err != nil {
			return false
		}
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b); err != nil {
			return false
		}
		fl.Flush()
		return true
	}
	lastIndex := uint64(0)
	crisisTick := time.NewTicker(500 * time.Millisecond)
	defer crisisTick.Stop()
	keepAlive := time.NewTicker(15 * time.Second)
	defer keepAlive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-n.stop:
			return
		case batch, ok := <-sub.C:
			if !ok {
				return
			}
			for _, e := range batch {
				if !send("entry", n.ViewEntry(e)) {
					return
				}
			}
		case <-crisisTick.C:
			v := n.engine.Local()
			if v.Index != lastIndex {
				lastIndex = v.Index
				cv, _ := n.Crisis(r.Context(), false)
				if !send("crisis", cv) {
					return
				}
			}
		case <-keepAlive.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
			fl.Flush()
		}
	}
}

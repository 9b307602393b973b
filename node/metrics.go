package node

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/crisismesh/crisismesh/replication/crisis"
)

// metrics is the node's Prometheus registry: our own collector, API
// latencies and libp2p's metrics. No global registry is touched.
type metrics struct {
	reg *prometheus.Registry
	api *prometheus.HistogramVec
}

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.api = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "crisismesh_api_request_seconds", Help: "Latency of local API requests.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	}, []string{"route", "code"})
	m.reg.MustRegister(m.api, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// instrument times a handler under its route pattern.
func (m *metrics) instrument(route string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		h(rec, r)
		m.api.WithLabelValues(route, http.StatusText(rec.code)).Observe(time.Since(start).Seconds())
	}
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection's deadlines.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// collector reads the node's state at scrape time.
type collector struct{ n *Node }

var (
	descEntries  = prometheus.NewDesc("crisismesh_log_entries", "Entries held in the crisis log.", nil, nil)
	descAuthors  = prometheus.NewDesc("crisismesh_log_authors", "Authors with entries in the crisis log.", nil, nil)
	descForks    = prometheus.NewDesc("crisismesh_log_forks", "Forks (equivocations) found.", nil, nil)
	descConn     = prometheus.NewDesc("crisismesh_peer_connected", "1 if the member's node is connected.", []string{"member"}, nil)
	descBehind   = prometheus.NewDesc("crisismesh_peer_behind_entries", "Entries this node holds that the member lacked when last seen (sync lag).", []string{"member"}, nil)
	descBytes    = prometheus.NewDesc("crisismesh_sync_bytes_total", "Sync protocol bytes exchanged with a peer.", []string{"member", "direction"}, nil)
	descEntriesX = prometheus.NewDesc("crisismesh_sync_entries_total", "Entries exchanged with a peer.", []string{"member", "direction"}, nil)
	descSessions = prometheus.NewDesc("crisismesh_sync_sessions_total", "Sync sessions with a peer.", []string{"member", "outcome"}, nil)
	descRole     = prometheus.NewDesc("crisismesh_raft_role", "1 for this node's Raft role.", []string{"role"}, nil)
	descTerm     = prometheus.NewDesc("crisismesh_raft_term", "Current Raft term.", nil, nil)
	descApplied  = prometheus.NewDesc("crisismesh_raft_applied_index", "Last applied Raft index.", nil, nil)
	descCommit   = prometheus.NewDesc("crisismesh_raft_commit_index", "Last committed Raft index.", nil, nil)
	descLevel    = prometheus.NewDesc("crisismesh_crisis_level", "Crisis level (0 normal … 4 cyber crisis) as this node knows it.", nil, nil)
	descAge      = prometheus.NewDesc("crisismesh_crisis_view_age_seconds", "Time since the last contact with a Raft leader (-1: never).", nil, nil)
	descDiskFull = prometheus.NewDesc("crisismesh_disk_full", "1 while the store refuses writes because free disk space is below its reserve.", nil, nil)
	descDiskFree = prometheus.NewDesc("crisismesh_disk_free_bytes", "Free space on the store's file system.", nil, nil)
	descDiskRes  = prometheus.NewDesc("crisismesh_disk_reserve_bytes", "Free space the store keeps in reserve: below it, writes are refused.", nil, nil)
	descReserve  = prometheus.NewDesc("crisismesh_reserve_deadline_seconds", "Time left until an open Reserve request's deadline (negative once overdue).", []string{"request", "sector"}, nil)
	descOffence  = prometheus.NewDesc("crisismesh_offences_total", "Entries of a member this node refused to trust or believe, by rule.", []string{"member", "rule"}, nil)
	descWaiting  = prometheus.NewDesc("crisismesh_entries_waiting", "Entries held waiting for their post-quantum signature (never acted on).", nil, nil)
	descWaitOver = prometheus.NewDesc("crisismesh_entries_waiting_overdue", "Entries waiting for their post-quantum signature longer than the narrow-link window and its grace.", nil, nil)
)

func (c collector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func (c collector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	s := n.Status(context.Background())
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge(descEntries, float64(s.Entries))
	gauge(descAuthors, float64(len(n.store.Frontier())))
	gauge(descForks, float64(s.Forks))
	for _, p := range s.Peers {
		gauge(descConn, b2f(p.Connected), p.Member)
		gauge(descBehind, float64(p.Behind), p.Member)
	}
	names := map[string]string{}
	for _, p := range s.Peers {
		names[p.PeerID] = p.Member
	}
	for _, ps := range n.sync.Peers() {
		m := names[ps.Peer.String()]
		if m == "" {
			continue
		}
		counter(descBytes, float64(ps.BytesSent), m, "sent")
		counter(descBytes, float64(ps.BytesRecv), m, "received")
		counter(descEntriesX, float64(ps.EntriesSent), m, "sent")
		counter(descEntriesX, float64(ps.EntriesRecv), m, "received")
		counter(descSessions, float64(ps.Sessions-ps.Failures), m, "ok")
		counter(descSessions, float64(ps.Failures), m, "failed")
	}
	for _, role := range []string{"leader", "follower", "candidate", "shutdown"} {
		gauge(descRole, b2f(s.Raft.Role == role), role)
	}
	gauge(descTerm, float64(s.Raft.Term))
	gauge(descApplied, float64(s.Raft.AppliedIndex))
	gauge(descCommit, float64(n.engine.Raft().CommitIndex()))
	gauge(descLevel, float64(s.Crisis.Level))
	age := -1.0
	if s.Crisis.AgeMS >= 0 {
		age = float64(s.Crisis.AgeMS) / 1000
	}
	gauge(descAge, age)
	gauge(descDiskFull, b2f(s.DiskFull))
	gauge(descDiskFree, float64(s.Disk.FreeBytes))
	gauge(descDiskRes, float64(s.Disk.ReserveBytes))
	for _, r := range s.Crisis.Requests {
		if r.Status == crisis.RequestOpen.String() {
			gauge(descReserve, float64(r.LeftMS)/1000, r.ID, r.Sector)
		}
	}
	for _, o := range s.Offences {
		counter(descOffence, float64(o.Entries), o.Member, o.Rule)
	}
	gauge(descWaiting, float64(s.Waiting))
	gauge(descWaitOver, float64(s.WaitingOverdue))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

package sync

// PathTraffic counts what one path (see Traffic) carried at this node.
type PathTraffic struct {
	BytesSent   int64 // written by this node: protocol and entries
	EntriesSent int64
	EntriesRecv int64 // received and newly stored
	// Duplicates were received but already held: dropped on ingest, the
	// bytes that carried them wasted.
	Duplicates int64
	// Refused were received but not stored: mostly for a reason an
	// honest peer causes (a gap: they come again later; an unsigned
	// tail: carried to the next batch, counted again there).
	Refused int64
}

// Traffic splits what this node's sync service sent and received by the
// path the entries took, so that what a heal costs can be told apart
// (sessions, pushes, offers) and the entries that crossed twice counted.
// It is a value: Service.Traffic returns a copy.
type Traffic struct {
	SessionsStarted PathTraffic // sessions this node initiated
	SessionsServed  PathTraffic // sessions peers initiated with this node
	Pushes          PathTraffic // pushes of this node's own entries (heads, then entries)
	Offers          PathTraffic // relayed entries: an offer, then what the peer lacked
	// OfferAnswers is what this node wrote answering offers (its
	// frontier for the offered authors); PeerStats.BytesSent leaves it
	// out.
	OfferAnswers int64
}

// Add returns t plus o, field by field.
func (t Traffic) Add(o Traffic) Traffic { return t.combine(o, 1) }

// Sub returns t minus o, field by field (what was counted after o was
// taken, when t was taken later from the same service).
func (t Traffic) Sub(o Traffic) Traffic { return t.combine(o, -1) }

func (t Traffic) combine(o Traffic, sign int64) Traffic {
	p := func(a, b PathTraffic) PathTraffic {
		return PathTraffic{
			BytesSent:   a.BytesSent + sign*b.BytesSent,
			EntriesSent: a.EntriesSent + sign*b.EntriesSent,
			EntriesRecv: a.EntriesRecv + sign*b.EntriesRecv,
			Duplicates:  a.Duplicates + sign*b.Duplicates,
			Refused:     a.Refused + sign*b.Refused,
		}
	}
	return Traffic{
		SessionsStarted: p(t.SessionsStarted, o.SessionsStarted),
		SessionsServed:  p(t.SessionsServed, o.SessionsServed),
		Pushes:          p(t.Pushes, o.Pushes),
		Offers:          p(t.Offers, o.Offers),
		OfferAnswers:    t.OfferAnswers + sign*o.OfferAnswers,
	}
}

// A path is the way a transfer's entries travel; it names the Traffic
// field that counts them.
type path uint8

const (
	pathSessionStarted path = iota
	pathSessionServed
	pathPush
	pathOffer
)

// pathLocked returns the counters of path w; the caller holds svc.mu.
func (svc *Service) pathLocked(w path) *PathTraffic {
	switch w {
	case pathSessionStarted:
		return &svc.traffic.SessionsStarted
	case pathSessionServed:
		return &svc.traffic.SessionsServed
	case pathPush:
		return &svc.traffic.Pushes
	default:
		return &svc.traffic.Offers
	}
}

// Traffic returns what this node's sync service sent and received so
// far, by path.
func (svc *Service) Traffic() Traffic {
	svc.mu.Lock()
	defer svc.mu.Unlock()
	return svc.traffic
}

// pushPath is the path of a push: an offer, or our own entries.
func pushPath(offer bool) path {
	if offer {
		return pathOffer
	}
	return pathPush
}

// countAnswer adds n bytes written answering an offer.
func (svc *Service) countAnswer(n int64) {
	svc.mu.Lock()
	defer svc.mu.Unlock()
	svc.traffic.OfferAnswers += n
}

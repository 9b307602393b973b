package node

import (
	"fmt"
	"time"

	"github.com/crisismesh/crisismesh/replication/crisis"
)

// ReserveAlertBefore is how long before a Reserve request's deadline
// `status` starts to alert (the Commission and ENISA have 24 hours).
const ReserveAlertBefore = 2 * time.Hour

// requestViews shows every Reserve request of s at now. Only an open
// request counts down (LeftMS, negative once overdue); a deployed or
// withdrawn one has LeftMS 0 and shows when it was closed.
func requestViews(s crisis.State, now time.Time) []RequestView {
	out := []RequestView{}
	for _, r := range s.Requests {
		v := RequestView{ID: r.ID.String(), Sector: r.Sector, Services: r.Services, Status: fmt.Sprint(r.Status), Deadline: r.Deadline}
		if r.Status == crisis.RequestOpen {
			v.LeftMS = r.Deadline.Sub(now).Milliseconds()
			v.Overdue = v.LeftMS < 0
		} else {
			closed := r.ClosedAt
			v.ClosedAt, v.ClosedBy = &closed, r.ClosedByName
		}
		out = append(out, v)
	}
	return out
}

// reserveAlerts lists the open Reserve requests of s due within
// ReserveAlertBefore of now, or overdue, earliest deadline first.
func reserveAlerts(s crisis.State, now time.Time) []AlertView {
	out := []AlertView{}
	for _, r := range s.OpenRequests(now) {
		if r.Left >= ReserveAlertBefore {
			continue
		}
		a := AlertView{Code: "reserve-deadline", Request: r.ID.String(), LeftMS: r.Left.Milliseconds()}
		if r.Overdue {
			a.Code = "reserve-overdue"
			a.Message = fmt.Sprintf("Reserve request %s (%s, by %s) is %s past its deadline: the Commission or ENISA marks it deployed or withdrawn", r.ID.String()[:8], r.Sector, r.ByName, (-r.Left).Round(time.Minute))
		} else {
			a.Message = fmt.Sprintf("Reserve request %s (%s, by %s) has %s left until its deadline (%s)", r.ID.String()[:8], r.Sector, r.ByName, r.Left.Round(time.Minute), r.Deadline.UTC().Format("2006-01-02 15:04 MST"))
		}
		out = append(out, a)
	}
	return out
}

package matrix

import (
	"fmt"
	"html"
	"strings"

	"github.com/crisismesh/crisismesh/replication/log"
)

// Keys of the bridge's own fields in the content of the events it sends.
// The entry ID in the content (not only in the transaction ID, which
// Dendrite keeps in memory only) is what the timeline check after a
// reconnect or restart looks for.
const (
	KeyEntry  = "org.crisismesh.entry_id"
	KeyTLP    = "org.crisismesh.tlp"
	KeyNotice = "org.crisismesh.notice" // a Reserve deadline notice: its code and request
)

// content is an m.room.message the bridge sends.
type content struct {
	MsgType       string `json:"msgtype"`
	Body          string `json:"body"`
	Format        string `json:"format,omitempty"`
	FormattedBody string `json:"formatted_body,omitempty"`
	Entry         string `json:"org.crisismesh.entry_id,omitempty"`
	TLP           string `json:"org.crisismesh.tlp,omitempty"`
	Notice        string `json:"org.crisismesh.notice,omitempty"`
}

// tlpColour are TLP 2.0's colours (on black, as the standard shows them).
var tlpColour = map[log.TLP]string{log.TLPClear: "#FFFFFF", log.TLPGreen: "#33FF00", log.TLPAmber: "#FFC000"}

// formatEntry renders an entry for the room: who wrote what, of which
// kind, under which TLP. Decisions and crisis states are notices.
func formatEntry(e Entry) content {
	label := "TLP:" + strings.ToUpper(string(e.TLP))
	kind := string(e.Kind)
	if e.Kind == log.KindCheckpoint {
		kind = "crisis state"
	}
	var pre string
	if e.Exercise {
		pre = "[EXERCISE] "
	}
	body := fmt.Sprintf("%s[%s] %s from %s: %s", pre, label, kind, e.Author, e.Text)
	var h strings.Builder
	if e.Exercise {
		h.WriteString("<b>[EXERCISE]</b> ")
	}
	fmt.Fprintf(&h, `<font color="%s" data-mx-bg-color="#000000">%s</font> <b>%s</b> from <b>%s</b>: %s`,
		tlpColour[e.TLP], label, html.EscapeString(kind), html.EscapeString(e.Author),
		strings.ReplaceAll(html.EscapeString(e.Text), "\n", "<br/>"))
	msgtype := "m.text"
	if e.Kind == log.KindDecision || e.Kind == log.KindCheckpoint {
		msgtype = "m.notice"
	}
	return content{MsgType: msgtype, Body: body, Format: "org.matrix.custom.html", FormattedBody: h.String(), Entry: e.ID, TLP: string(e.TLP)}
}

// formatNotice renders a Reserve deadline alert for the room, as a notice.
func formatNotice(a Alert) content {
	label := "TLP:" + strings.ToUpper(string(NoticeTLP))
	what := "Reserve deadline"
	if a.Code == AlertOverdue {
		what = "Reserve deadline passed"
	}
	return content{MsgType: "m.notice", Body: fmt.Sprintf("[%s] %s: %s", label, what, a.Text), Format: "org.matrix.custom.html",
		FormattedBody: fmt.Sprintf(`<font color="%s" data-mx-bg-color="#000000">%s</font> <b>%s</b>: %s`, tlpColour[NoticeTLP], label, what, html.EscapeString(a.Text)),
		TLP:           string(NoticeTLP), Notice: a.key()}
}

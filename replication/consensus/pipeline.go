package consensus

import (
	"sync"

	"github.com/hashicorp/raft"
)

// hashicorp/raft's pipeline can deadlock (hashicorp/raft#612): when a
// follower answers Success=false, Raft stops taking answers from the
// pipeline; the transport's decoder then blocks handing the next answer
// to nobody, and Raft's sender blocks handing the decoder the next
// request. The follower never receives another entry from this leader,
// while heartbeats (sent apart) keep it from calling an election; and
// Shutdown waits for the sender forever. A network-layer campaign (a
// satellite link, many requests in flight) hung 15 minutes in Node.Close
// on exactly these two goroutines.
//
// guardedPipeline breaks the cycle: it takes every answer off the
// transport's pipeline as soon as it is decoded and queues it for Raft,
// so the decoder never waits on Raft; the sender then always gets its
// request through, returns to its loop, sees that Raft stopped consuming
// and closes the pipeline, which drops what is still queued. The queue is
// bounded by what Raft sends before it sees that (the transport keeps at
// most its in-flight limit undecoded). It also passes each answer's term
// through the guard: an answer with a term out of range reaches Raft as
// a failed answer in the request's own term, which ends the pipeline
// (Raft goes back to one AppendEntries at a time, which the guard checks
// too) without adopting the term.
type guardedPipeline struct {
	raft.AppendPipeline
	g         *termGuard
	out       chan raft.AppendFuture
	stop      chan struct{}
	closeOnce sync.Once
	done      chan struct{}
}

// AppendEntriesPipeline opens the transport's pipeline behind the guard.
func (g *termGuard) AppendEntriesPipeline(id raft.ServerID, target raft.ServerAddress) (raft.AppendPipeline, error) {
	p, err := g.Transport.AppendEntriesPipeline(id, target)
	if err != nil {
		return nil, err
	}
	gp := &guardedPipeline{AppendPipeline: p, g: g, out: make(chan raft.AppendFuture), stop: make(chan struct{}), done: make(chan struct{})}
	go gp.forward()
	return gp, nil
}

// forward moves answers from the transport's pipeline to Raft, queueing
// those Raft does not take yet.
func (gp *guardedPipeline) forward() {
	defer close(gp.done)
	in := gp.AppendPipeline.Consumer()
	var queue []raft.AppendFuture
	for {
		var out chan raft.AppendFuture
		var next raft.AppendFuture
		if len(queue) > 0 {
			out, next = gp.out, queue[0]
		}
		select {
		case f := <-in:
			queue = append(queue, gp.checked(f))
		case out <- next:
			queue = queue[1:]
		case <-gp.stop:
			return
		}
	}
}

// checked returns f, or f with a failed answer in the request's term if
// the term the peer answered with may not reach Raft.
func (gp *guardedPipeline) checked(f raft.AppendFuture) raft.AppendFuture {
	resp := f.Response()
	if resp == nil || f.Error() != nil || gp.g.ok(resp.Term, "append response") {
		return f
	}
	return refusedFuture{f, &raft.AppendEntriesResponse{RPCHeader: resp.RPCHeader, Term: f.Request().Term}}
}

// Consumer is where Raft takes the answers.
func (gp *guardedPipeline) Consumer() <-chan raft.AppendFuture { return gp.out }

// Close stops forwarding and closes the transport's pipeline.
func (gp *guardedPipeline) Close() error {
	gp.closeOnce.Do(func() { close(gp.stop) })
	err := gp.AppendPipeline.Close()
	<-gp.done
	return err
}

// refusedFuture is an answer whose term the guard refused: a failed
// append in the request's own term.
type refusedFuture struct {
	raft.AppendFuture
	resp *raft.AppendEntriesResponse
}

func (f refusedFuture) Response() *raft.AppendEntriesResponse { return f.resp }
func (f refusedFuture) Error() error                          { return errTermOutOfRange }

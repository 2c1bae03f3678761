package etcd

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/sshbastion/bastion/store"
)

// Forwarding: a writer that does not lead hands its batch straight to the
// sequencer, over a connection between the two replicas, instead of
// putting it into its inbox key. The sequencer chains it with its own
// batches in its next sweep, so a follower's event costs one etcd
// proposal (the sweep), not two (an inbox put, then the sweep), and its
// bytes are replicated once. P8 measured the inbox path at about half of
// one writer's ceiling: etcd's cost is per proposal, and every follower
// batch paid for two.
//
// The inbox stays the path whenever forwarding cannot be sure: no leader
// known, its address unreachable, a handshake refused, or a leader that
// says it no longer leads. Those batches were never taken, so sending them
// to the inbox cannot chain them twice. Once a request is written, the
// outcome is the sequencer's: if its answer is lost, the append fails
// (a stored event its caller was told failed, never the reverse), as the
// leader's own batches do when a sweep's outcome is unknown.
//
// Only replicas may reach the endpoint: each side presents the
// sequencer's key pair, created once in the store (seqtls.go), and refuses
// a peer that presents any other certificate. Anyone able to send batches
// could otherwise write events into the chain in a replica's name.

// seqAnnounce is the sequencer election's value: who campaigns and where
// its forwarding endpoint listens ("" when it has none).
type seqAnnounce struct {
	ID   string `json:"id"`
	Addr string `json:"addr,omitempty"`
}

// forwardPath is the endpoint's one route.
const forwardPath = "/audit/v1/sequence"

// forwardReply is the endpoint's answer: where the batch was chained (as
// a receipt: the seq and hash it follows, its last hash), or why not.
type forwardReply struct {
	inboxValue
	// NotLeading: the batch was not taken; the writer may use its inbox.
	NotLeading bool   `json:"not_leading,omitempty"`
	Error      string `json:"error,omitempty"`
}

// errNotForwarded means a batch was certainly not taken by the sequencer.
var errNotForwarded = errors.New("etcd: audit batch not forwarded")

// forwarder is one writer's forwarding: its endpoint, which serves while
// it leads, and its client for the leader's.
type forwarder struct {
	q      *sequencer
	addr   string // this endpoint's advertised address, "" if none
	leader atomic.Pointer[seqAnnounce]
	client *http.Client
	srv    *http.Server

	forwarded, fellBack atomic.Uint64
}

// startForwarder listens on the configured address and serves the
// endpoint until the store closes. A store that cannot listen or has no
// key pair still works: its batches go through the inbox.
func (q *sequencer) startForwarder() *forwarder {
	f := &forwarder{q: q}
	s := q.s
	if s.seqListen == "-" {
		return f
	}
	ctx, cancel := context.WithTimeout(s.ctx, appendTimeout)
	defer cancel()
	srvTLS, cliTLS, err := s.sequencerTLS(ctx)
	if err != nil {
		s.log.Warn("etcd: audit sequencer forwarding off; batches go through the inbox", "err", err)
		return f
	}
	ln, err := net.Listen("tcp", s.seqListen)
	if err != nil {
		s.log.Warn("etcd: audit sequencer forwarding off; batches go through the inbox", "listen", s.seqListen, "err", err)
		return f
	}
	f.addr = advertised(s.seqAdvertise, ln.Addr())
	s.log.Info("etcd: audit sequencer endpoint", "listen", ln.Addr().String(), "advertise", f.addr)
	f.client = &http.Client{Transport: &http.Transport{
		TLSClientConfig: cliTLS, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 4,
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		TLSHandshakeTimeout: 2 * time.Second,
	}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+forwardPath, f.serve)
	// Deadlines, so a peer that stalls cannot hold connections open.
	f.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: appendTimeout,
		WriteTimeout: 2 * appendTimeout, IdleTimeout: time.Minute, ErrorLog: nil}
	go func() { _ = f.srv.Serve(tls.NewListener(ln, srvTLS)) }()
	context.AfterFunc(s.ctx, func() { _ = f.srv.Close(); f.client.CloseIdleConnections() })
	return f
}

// advertised is the address other replicas dial: adv if set, else the
// listener's own address, with the host name for an unspecified IP (a
// replica dialling "[::]:port" would reach itself).
func advertised(adv string, a net.Addr) string {
	if adv != "" {
		return adv
	}
	if ta, ok := a.(*net.TCPAddr); ok && ta.IP.IsUnspecified() {
		if h, err := os.Hostname(); err == nil {
			return net.JoinHostPort(h, strconv.Itoa(ta.Port))
		}
	}
	return a.String()
}

// serve takes a forwarded batch while this writer leads.
func (f *forwarder) serve(w http.ResponseWriter, r *http.Request) {
	reply := func(code int, v forwardReply) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(v)
	}
	var evs []store.Event
	// Bounded like an inbox value: what one sweep may hold.
	if err := json.NewDecoder(io.LimitReader(r.Body, txnBytes)).Decode(&evs); err != nil || len(evs) == 0 {
		reply(http.StatusBadRequest, forwardReply{Error: fmt.Sprintf("bad batch: %v", err)})
		return
	}
	l := f.q.leading.Load()
	if l == nil {
		reply(http.StatusConflict, forwardReply{NotLeading: true})
		return
	}
	out, err := l.submit(r.Context(), evs)
	switch {
	case errors.Is(err, errNotLeading):
		reply(http.StatusConflict, forwardReply{NotLeading: true})
	case err != nil:
		reply(http.StatusServiceUnavailable, forwardReply{Error: err.Error()})
	default:
		first, last := out[0], out[len(out)-1]
		reply(http.StatusOK, forwardReply{inboxValue: inboxValue{Chained: true, Seq: first.Seq - 1, Prev: first.PrevHash, Last: last.Hash}})
	}
}

// forward sends events to the leader's endpoint. errNotForwarded (wrapped)
// means the batch was certainly not taken; any other error, that its
// outcome is unknown.
func (f *forwarder) forward(ctx context.Context, events []store.Event) ([]store.Event, error) {
	a := f.target()
	if a == nil {
		return nil, errNotForwarded
	}
	body, err := json.Marshal(events)
	if err != nil {
		return nil, fmt.Errorf("etcd: encode audit batch: %w", err)
	}
	// A batch too big for one sweep is the inbox's to refuse, with its
	// error (store.ErrTxnTooBig), before anything is sent.
	if len(body) > txnBytes-blockBytes {
		return nil, errNotForwarded
	}
	var wrote atomic.Bool
	trace := &httptrace.ClientTrace{WroteRequest: func(i httptrace.WroteRequestInfo) {
		if i.Err == nil {
			wrote.Store(true)
		}
	}}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodPost,
		"https://"+a.Addr+forwardPath, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNotForwarded, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		if !wrote.Load() {
			return nil, fmt.Errorf("%w: %v", errNotForwarded, err)
		}
		return nil, fmt.Errorf("etcd: audit batch sent to the sequencer at %s, answer lost: %w", a.Addr, err)
	}
	defer resp.Body.Close()
	var r forwardReply
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&r); err != nil {
		return nil, fmt.Errorf("etcd: audit sequencer at %s: unreadable answer (%s): %w", a.Addr, resp.Status, err)
	}
	switch {
	case resp.StatusCode == http.StatusConflict && r.NotLeading:
		return nil, fmt.Errorf("%w: %s no longer leads", errNotForwarded, a.Addr)
	case resp.StatusCode != http.StatusOK || !r.Chained:
		return nil, fmt.Errorf("etcd: audit sequencer at %s: %s: %s", a.Addr, resp.Status, r.Error)
	}
	out := f.q.chain(r.Seq, r.Prev, events)
	// The sequencer chained what it decoded: the same hashes, unless
	// encoding changed an event.
	if got := out[len(out)-1].Hash; got != r.Last {
		return nil, fmt.Errorf("etcd: forwarded audit batch was stored with hash %s, chained here as %s", r.Last, got)
	}
	return out, nil
}

// SequencerStats says how many of this store's audit batches were
// forwarded to the sequencer, and how many went through the inbox.
func (s *Store) SequencerStats() (forwarded, viaInbox uint64) {
	q := s.seq.Load()
	if q == nil {
		return 0, 0
	}
	return q.fwd.forwarded.Load(), q.fwd.fellBack.Load()
}

// ready says whether batches would be forwarded now.
func (f *forwarder) ready() bool { return f.target() != nil }

// target is the leader to forward to: nil without a client, a known
// leader with an address, or when this writer leads.
func (f *forwarder) target() *seqAnnounce {
	a := f.leader.Load()
	if f.client == nil || a == nil || a.Addr == "" || a.ID == f.q.id {
		return nil
	}
	return a
}

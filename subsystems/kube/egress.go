package kube

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	gossh "golang.org/x/crypto/ssh"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/subsystems"
	"github.com/sshbastion/bastion/subsystems/reasons"
	"github.com/sshbastion/bastion/subsystems/sessions"
)

// reasonNoEgress: the -R names no kube Resource that offers egress, or
// the cluster cannot take the Service.
const reasonNoEgress = reasons.NoEgress

// forwardRequest is the payload of tcpip-forward and cancel-tcpip-forward
// (RFC 4254 7.1).
type forwardRequest struct {
	Addr string
	Port uint32
}

// forwardedTCPIP is the payload of a forwarded-tcpip channel open (RFC
// 4254 7.2): OpenSSH finds its -R by Addr and Port as it sent them.
type forwardedTCPIP struct {
	Addr       string
	Port       uint32
	OriginAddr string
	OriginPort uint32
}

// egresses are the live -R egresses of this replica, by connection and
// forward.
type egresses struct {
	mu sync.Mutex
	m  map[string]*egress
	wg sync.WaitGroup // serveEgress goroutines, until egress.close is written
}

// wait gives the egresses that are ending (their connections closed at
// shutdown) up to limit to take back what they made and write egress.close.
func (t *egresses) wait(limit time.Duration) bool {
	done := make(chan struct{})
	go func() { t.wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(limit):
		return false
	}
}

type egress struct {
	ln     net.Listener
	once   sync.Once
	done   chan struct{} // closed by end
	reason string        // why it ended, set before done closes
}

func (e *egress) end(reason string) {
	e.once.Do(func() { e.reason = reason; close(e.done); _ = e.ln.Close() })
}

func (t *egresses) put(key string, e *egress) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[string]*egress{}
	}
	if _, dup := t.m[key]; dup {
		return false
	}
	t.m[key] = e
	return true
}

func (t *egresses) take(key string) *egress {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.m[key]
	delete(t.m, key)
	return e
}

// EgressRequest answers `ssh -R NS/SVC:PORT:localhost:LOCALPORT`: as the
// impersonated user it makes Service NS/SVC answer on PORT with an
// EndpointSlice naming the Resource's egress_address, listens there, and
// relays each in-cluster connection to the user as a forwarded-tcpip
// channel, until the connection ends, the forward is cancelled or the
// session is killed; then it takes back what it made. A bind address
// without a slash is not an egress: the core refuses it as before.
func (m *Module) EgressRequest(ctx context.Context, conn *gossh.ServerConn, req *gossh.Request) subsystems.GlobalReply {
	var fr forwardRequest
	if conn == nil || gossh.Unmarshal(req.Payload, &fr) != nil {
		return subsystems.GlobalReply{}
	}
	resName, ns, svc, ours, perr := egressTarget(fr.Addr)
	if !ours {
		return subsystems.GlobalReply{}
	}
	p, ok := authn.FromContext(ctx)
	if !ok {
		return subsystems.GlobalReply{}
	}
	spec := fmt.Sprintf("-R %s:%d", fr.Addr, fr.Port)
	details := map[string]string{"namespace": ns, "service": svc, "port": strconv.Itoa(int(fr.Port)), "conn": p.SessionID, "source": p.SourceAddr}
	target := resName
	deny := func(code, msg string) subsystems.GlobalReply {
		d := map[string]string{reasons.DetailKey: code}
		for k, v := range details {
			d[k] = v
		}
		e := store.Event{Actor: p.User, Action: "egress.deny", Target: target, Decision: "deny", Reason: msg, Details: d}
		if _, err := m.audit.Append(ctx, e); err != nil {
			subsystems.AuditLost(m.log, m.audit, e, err)
		}
		return subsystems.GlobalReply{Handled: true, Notice: "bastion: remote port forwarding (ssh " + spec + ") refused: " + msg}
	}
	if perr != nil {
		return deny(reasonBadWorkload, perr.Error())
	}
	if fr.Port == 0 || fr.Port > 65535 {
		return deny(reasonBadWorkload, "name the Service's port (1-65535)")
	}
	dctx := subsystems.DecisionContextFor(ctx, p, subsystems.KindKube, time.Now())
	r, err := m.egressResource(dctx, p, resName)
	if err != nil {
		return deny(reasonNoEgress, err.Error())
	}
	target = r.Name
	if ok, why := subsystems.CanView(dctx, m.policy, p, r.Name); !ok {
		return deny(reasons.NotAResource, why) // read like a name that does not exist
	}
	// The bastion's own gate: egress puts the user's service inside the
	// cluster, which act (reaching into it) does not grant.
	ok, err = m.policy.Check(dctx, p.Subject(), "egress", "resource:"+r.Name)
	if err != nil {
		return deny(reasons.PolicyError, "the policy could not be evaluated ("+err.Error()+")") // fail closed
	}
	if !ok {
		return deny(reasons.ReBACDenied, fmt.Sprintf("%s lacks egress on resource:%s%s. An admin can allow it with: %s tuples add resource:%s#egress@%s",
			p.Subject(), r.Name, subsystems.UnmetConditions(dctx, m.policy, p.Subject(), "egress", "resource:"+r.Name), m.cfg.Host, r.Name, p.Subject()))
	}
	up, err := m.upstream(r)
	if err != nil {
		return deny(reasonNoEgress, fmt.Sprintf("%s cannot be reached: %v; an admin must fix the Resource", r.Name, err))
	}
	id, err := m.identity(p, r)
	if err != nil {
		return deny(reasons.PolicyError, fmt.Sprintf("the groups for %s could not be evaluated (%v); try again", p.User, err))
	}
	actx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	// The cluster's RBAC is the second gate, asked first so that a
	// refusal names what is missing rather than failing half-way.
	if msg, err := egressRBAC(actx, up, id, r.Name, ns); err != nil {
		return deny(reasonNoEgress, fmt.Sprintf("the Kubernetes RBAC of %s could not be asked (%v); try again", r.Name, err))
	} else if msg != "" {
		return deny(reasonKubeRBAC, msg)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(r.Kube.EgressAddress, "0"))
	if err != nil {
		return deny(reasonNoEgress, fmt.Sprintf("the bastion cannot listen on %s's egress address: %v; an admin must fix kube.egress_address", r.Name, err))
	}
	lport := ln.Addr().(*net.TCPAddr).Port
	details["listen"] = ln.Addr().String()
	pub, err := up.PublishEgress(actx, id, ns, svc, int32(fr.Port), r.Kube.EgressAddress, int32(lport))
	if err != nil {
		_ = ln.Close()
		code, msg := reasonNoEgress, fmt.Sprintf("Service %s/%s of %s: %v", ns, svc, r.Name, err)
		if apierrors.IsForbidden(err) {
			code = reasonKubeRBAC
			msg = fmt.Sprintf("refused by the Kubernetes RBAC of %s, not by the bastion: %v", r.Name, err)
		}
		return deny(code, msg)
	}
	e := &egress{ln: ln, done: make(chan struct{})}
	key := p.SessionID + "|" + fr.Addr + ":" + strconv.Itoa(int(fr.Port))
	cleanup := func() {
		if rerr := pub.Remove(context.Background()); rerr != nil {
			m.log.Error("egress: cleanup failed", "namespace", ns, "service", svc, "err", rerr)
			details["cleanup_error"] = rerr.Error()
		}
	}
	if !m.egress.put(key, e) {
		_ = ln.Close()
		cleanup()
		return deny(reasonNoEgress, "this connection forwards it already")
	}
	live, err := m.sessions.Open(ctx, sessions.Request{Principal: p, Resource: r, Kind: "egress", Relation: "egress",
		Target: fr.Addr + ":" + strconv.Itoa(int(fr.Port)), Closer: e.end})
	if err != nil {
		m.egress.take(key)
		_ = ln.Close()
		cleanup()
		return deny(reasonNoEgress, "cannot open a session: "+err.Error())
	}
	details["session"], details["as_user"], details["slice"] = live.ID(), id.User, pub.Slice
	details["service_created"] = strconv.FormatBool(pub.Created())
	// Nothing is relayed before egress.open is durable.
	if _, err := m.audit.Append(ctx, store.Event{Actor: p.User, Action: "egress.open", Target: r.Name, Decision: "allow", Details: details}); err != nil {
		m.egress.take(key)
		m.sessions.End(live, "audit unavailable")
		_ = ln.Close()
		cleanup()
		return subsystems.GlobalReply{Handled: true, Notice: "bastion: the audit log cannot record this -R now; try again later"}
	}
	go func() {
		select {
		case <-ctx.Done():
			e.end(sessions.ReasonClientClosed)
		case <-live.Done():
			e.end(sessions.ReasonTargetClosed)
		case <-e.done:
		}
	}()
	m.egress.wg.Add(1)
	go func() {
		defer m.egress.wg.Done()
		m.serveEgress(conn, fr, e, live, details, key, r, p, cleanup)
	}()
	return subsystems.GlobalReply{Handled: true, OK: true}
}

// serveEgress relays the in-cluster connections until the egress ends,
// then takes back what it made and writes egress.close.
func (m *Module) serveEgress(conn *gossh.ServerConn, fr forwardRequest, e *egress, live *sessions.Live,
	details map[string]string, key string, r store.Resource, p authn.Principal, cleanup func()) {
	opened := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	open := map[io.Closer]bool{}
	conns := 0
	for {
		c, err := e.ln.Accept()
		if err != nil {
			break
		}
		conns++
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			ra, _ := c.RemoteAddr().(*net.TCPAddr)
			o := forwardedTCPIP{Addr: fr.Addr, Port: fr.Port}
			if ra != nil {
				o.OriginAddr, o.OriginPort = ra.IP.String(), uint32(ra.Port)
			}
			ch, reqs, err := conn.OpenChannel("forwarded-tcpip", gossh.Marshal(&o))
			if err != nil {
				return
			}
			go gossh.DiscardRequests(reqs)
			mu.Lock()
			open[ch] = true
			mu.Unlock()
			cc := &countedChannel{Channel: ch, live: live}
			done := make(chan struct{}, 2)
			go func() { _, _ = io.Copy(cc, c); _ = ch.CloseWrite(); done <- struct{}{} }()
			go func() {
				_, _ = io.Copy(c, cc)
				if tc, ok := c.(*net.TCPConn); ok {
					_ = tc.CloseWrite() // half-close: the pod may still be sending
				}
				done <- struct{}{}
			}()
			<-done
			<-done
			_ = ch.Close()
			mu.Lock()
			delete(open, ch)
			mu.Unlock()
		}()
	}
	<-e.done
	reason := e.reason
	m.egress.take(key)
	mu.Lock()
	for ch := range open {
		_ = ch.Close()
	}
	mu.Unlock()
	wg.Wait()
	cleanup()
	reason = m.sessions.End(live, reason)
	s := live.Snapshot()
	details["bytes_in"], details["bytes_out"] = strconv.FormatInt(s.BytesIn, 10), strconv.FormatInt(s.BytesOut, 10)
	details["connections"] = strconv.Itoa(conns)
	details["duration"] = time.Since(opened).Round(time.Millisecond).String()
	closed := store.Event{Actor: p.User, Action: "egress.close", Target: r.Name, Decision: "allow", Reason: reason, Details: details}
	if _, err := m.audit.Append(context.Background(), closed); err != nil {
		subsystems.AuditLost(m.log, m.audit, closed, err)
	}
}

// EgressCancel answers cancel-tcpip-forward for an egress of this
// connection; other cancels are the core's to refuse.
func (m *Module) EgressCancel(ctx context.Context, conn *gossh.ServerConn, req *gossh.Request) subsystems.GlobalReply {
	var fr forwardRequest
	p, ok := authn.FromContext(ctx)
	if !ok || gossh.Unmarshal(req.Payload, &fr) != nil || !strings.Contains(fr.Addr, "/") {
		return subsystems.GlobalReply{}
	}
	m.egress.mu.Lock()
	e := m.egress.m[p.SessionID+"|"+fr.Addr+":"+strconv.Itoa(int(fr.Port))]
	m.egress.mu.Unlock()
	if e == nil {
		return subsystems.GlobalReply{Handled: true}
	}
	e.end(sessions.ReasonClientClosed)
	return subsystems.GlobalReply{Handled: true, OK: true}
}

package kube

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/k8s"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/subsystems"
	"github.com/sshbastion/bastion/subsystems/sessions"
)

// tokenWait is how long a tunnel connection may stay open without a
// request bearing a valid token; after that it is closed, so that
// connections no grant owns cannot linger.
const tokenWait = time.Minute

type connKey struct{}

func connContext(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = tc.NetConn()
	}
	if p, ok := c.(*pipeConn); ok {
		return context.WithValue(ctx, connKey{}, p.t)
	}
	return ctx
}

// ServeTunnel takes a direct-tcpip channel to a kube Resource, already
// gated (act, port) by the forward module, and serves it as HTTPS.
func (m *Module) ServeTunnel(ctx context.Context, p authn.Principal, r store.Resource, target string, nc gossh.NewChannel) {
	// The channel is accepted only once its kube.tunnel event is durable.
	if _, err := m.audit.Append(ctx, store.Event{Actor: p.User, Action: "kube.tunnel", Target: r.Name, Decision: "allow",
		Details: map[string]string{"target": target, "source": p.SourceAddr, "conn": p.SessionID}}); err != nil {
		_ = nc.Reject(gossh.Prohibited, "bastion: the audit log cannot record this tunnel now; try again later")
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		return
	}
	go gossh.DiscardRequests(reqs)
	c := newTunnelConn(ch, p, r)
	if err := m.ln.push(c.serverConn()); err != nil {
		c.close()
		return
	}
	untrack := m.cfg.Metrics.tunnel()
	go func() {
		defer untrack() // every way out below has closed c
		t := time.NewTimer(tokenWait)
		defer t.Stop()
		select {
		case <-c.done:
		case <-ctx.Done(): // the ssh connection ended
			c.close()
		case <-t.C:
			c.mu.Lock()
			owned := c.grant != nil
			c.mu.Unlock()
			if !owned {
				c.close()
				return
			}
			select {
			case <-c.done:
			case <-ctx.Done():
				c.close()
			}
		}
	}()
}

// ServeHTTP authenticates one request by its kubeconfig token, proxies it
// as the user and audits it.
func (m *Module) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, ok := r.Context().Value(connKey{}).(*tunnelConn)
	if !ok {
		k8s.WriteStatus(w, http.StatusInternalServerError, "bastion: request without a tunnel")
		return
	}
	start := time.Now()
	info := k8s.ParseRequest(r)
	rec := &recorder{ResponseWriter: w}
	body := &countingBody{ReadCloser: r.Body}
	// An empty body stays http.NoBody: wrapped, a POST without a body
	// would be forwarded with "Transfer-Encoding: chunked" (its length
	// looks unknown), and for an upgrade (kubectl's SPDY exec, attach and
	// port-forward are POSTs) the chunk terminator "0\r\n\r\n" would
	// then reach the kubelet's stream server as the first bytes of the
	// SPDY session, which hangs waiting for a frame that never comes.
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = body
	}
	g, code, deny := m.authorize(c, r)
	var id k8s.Identity
	// The event is written even when the proxy aborts the handler (it
	// panics with http.ErrAbortHandler when a stream such as a watch is
	// cut mid-response), and the panic is passed on.
	defer func() {
		aborted := recover()
		m.record(c, g, id, info, rec, body.n, start, deny, aborted != nil)
		if aborted != nil {
			panic(aborted)
		}
	}()
	if deny == "" {
		var h http.Handler
		if h, id, deny = m.handlerFor(c, g); deny != "" {
			code = http.StatusBadGateway
		} else {
			h.ServeHTTP(rec, r)
		}
	}
	if deny != "" {
		k8s.WriteStatus(rec, code, deny)
	}
}

// record queues the kube.request event of one request.
func (m *Module) record(c *tunnelConn, g *grant, id k8s.Identity, info k8s.Info, rec *recorder, in int64, start time.Time, deny string, aborted bool) {
	status := rec.status()
	in += rec.bytesIn()
	m.cfg.Metrics.request(info.Verb, status, time.Since(start))
	if g != nil && deny == "" {
		if g.live != nil {
			g.live.CountIn(int(in))
			g.live.CountOut(int(rec.bytes))
		} else {
			m.touch(g)
		}
	}
	d := map[string]string{"verb": info.Verb, "api_group": info.APIGroup, "resource": info.Resource,
		"subresource": info.Subresource, "namespace": info.Namespace, "name": info.Name, "path": info.Path,
		"status": strconv.Itoa(status), "latency_ms": strconv.FormatFloat(float64(time.Since(start).Microseconds())/1000, 'f', 3, 64),
		"bytes_in": strconv.FormatInt(in, 10), "bytes_out": strconv.FormatInt(rec.bytes, 10)}
	if aborted {
		d["ended"] = "stream cut"
	}
	for k, v := range d {
		if v == "" {
			delete(d, k)
		}
	}
	if g != nil {
		d["session"] = g.session
	}
	if id.User != "" {
		d["as_user"], d["as_groups"] = id.User, strings.Join(id.Groups, ",")
	}
	e := store.Event{Actor: c.p.User, Action: "kube.request", Target: c.r.Name, Decision: "allow", Details: d}
	if deny != "" {
		e.Decision, e.Reason = "deny", deny
	}
	m.events <- e
}

// authorize checks the request's token: it must exist, belong to the
// channel's user and Resource, and its session must still be live. This is
// what keeps other local processes off a forwarded port: reaching the port
// is not enough without the kubeconfig of the user who opened it.
func (m *Module) authorize(c *tunnelConn, r *http.Request) (*grant, int, string) {
	again := fmt.Sprintf("get a new kubeconfig with: %s kubeconfig %s", m.cfg.Host, c.r.Name)
	auth := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || tok == "" {
		return nil, http.StatusUnauthorized, "bastion: no token: this tunnel only serves requests that carry the token of a kubeconfig from the bastion; " + again
	}
	tok = strings.TrimSpace(tok)
	g := m.tokens.get(tok)
	if g == nil {
		// Issued through another replica, perhaps: the store knows.
		var msg string
		if g, msg = m.remoteGrant(r.Context(), tok); msg != "" {
			return nil, http.StatusServiceUnavailable, msg
		}
	}
	switch {
	case g == nil:
		return nil, http.StatusUnauthorized, "bastion: unknown token (it was never issued by this bastion, or the bastion restarted); " + again
	case g.p.User != c.p.User:
		return nil, http.StatusUnauthorized, fmt.Sprintf("bastion: this token was issued to another user, not to %s, who opened this tunnel; tokens work only on their owner's tunnel: %s", c.p.User, again)
	case g.r.Name != c.r.Name:
		return nil, http.StatusUnauthorized, fmt.Sprintf("bastion: this token is for %s, but the tunnel goes to %s; %s", g.r.Name, c.r.Name, again)
	}
	if ended, why := g.state(); !ended.IsZero() {
		return nil, http.StatusUnauthorized, endedMessage(g, ended, why, again)
	}
	c.mu.Lock()
	prev := c.grant
	c.grant = g
	c.mu.Unlock()
	if prev != g {
		if prev != nil {
			prev.detach(c)
		}
		if !g.attach(c) {
			ended, why := g.state()
			return nil, http.StatusUnauthorized, endedMessage(g, ended, why, again)
		}
	}
	return g, 0, ""
}

func endedMessage(g *grant, ended time.Time, why, again string) string {
	s := g.session
	switch why {
	case sessions.ReasonTTL:
		return fmt.Sprintf("bastion: this kubeconfig's token expired at %s with its session %s; %s", ended.UTC().Format(time.RFC3339), s, again)
	case sessions.ReasonRevoked:
		return fmt.Sprintf("bastion: this kubeconfig's token was revoked at %s (session %s was killed); %s", ended.UTC().Format(time.RFC3339), s, again)
	case sessions.ReasonStepUpExpired:
		return fmt.Sprintf("bastion: this kubeconfig's session %s ended at %s (step_up_expired): it outlived the strong login its step-up requirement accepted; "+
			"step up (the bastion's `step-up` command, or a login with your security key), then %s", s, ended.UTC().Format(time.RFC3339), again)
	}
	return fmt.Sprintf("bastion: this kubeconfig's token ended at %s with its session %s (%s); %s", ended.UTC().Format(time.RFC3339), s, why, again)
}

// handlerFor returns the proxy for one request, impersonating the grant's
// user with the groups its ReBAC relations map to now. The identity is
// evaluated on every request, never once per connection: a kept-alive
// kubectl connection must lose a group the moment the relation behind it
// is removed (or the Resource's mapping changes), as a new connection
// would. The policy engine's tuple cache keeps this cheap; the proxy
// itself is reused while the identity stays the same.
func (m *Module) handlerFor(c *tunnelConn, g *grant) (http.Handler, k8s.Identity, string) {
	r, err := m.resources.GetResource(context.Background(), c.r.Name)
	if err != nil {
		return nil, k8s.Identity{}, fmt.Sprintf("bastion: the Resource %s is no longer available (%v); ask an admin (%s resources list)", c.r.Name, err, m.cfg.Host)
	}
	up, err := m.upstream(r)
	if err != nil {
		return nil, k8s.Identity{}, fmt.Sprintf("bastion: %s cannot be reached: %v; an admin must fix the Resource (%s resources show %s)", c.r.Name, err, m.cfg.Host, c.r.Name)
	}
	id, err := m.identity(g.p, r)
	if err != nil {
		return nil, k8s.Identity{}, fmt.Sprintf("bastion: the groups for %s could not be evaluated (%v); try again", g.p.User, err)
	}
	key := identityKey(id, up)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.handler != nil && c.handler.key == key {
		return c.handler.h, c.handler.id, ""
	}
	h, err := up.Handler(id, m.proxyError(r, up))
	if err != nil {
		return nil, k8s.Identity{}, fmt.Sprintf("bastion: cannot set up the connection to %s: %v", c.r.Name, err)
	}
	c.handler = &identityHandler{key: key, id: id, h: h}
	return h, id, ""
}

// identityKey names the proxy a request may reuse: the same upstream and
// exactly the same impersonated user and groups.
func identityKey(id k8s.Identity, up *k8s.Upstream) string {
	return fmt.Sprintf("%p\x00%s\x00%s", up, id.User, strings.Join(id.Groups, "\x00"))
}

type identityHandler struct {
	key string
	id  k8s.Identity
	h   http.Handler
}

// identity is the user the apiserver sees: the bastion user (prefixed),
// the groups of every relation the user holds on the Resource per the
// Resource's mapping, and the user's IdP groups (prefixed).
func (m *Module) identity(p authn.Principal, r store.Resource) (k8s.Identity, error) {
	id := k8s.Identity{User: m.cfg.UserPrefix + p.User}
	seen := map[string]bool{}
	add := func(grp string) {
		if !seen[grp] {
			seen[grp] = true
			id.Groups = append(id.Groups, grp)
		}
	}
	if r.Kube != nil {
		rels := make([]string, 0, len(r.Kube.Groups))
		for rel := range r.Kube.Groups {
			rels = append(rels, rel)
		}
		sort.Strings(rels)
		for _, rel := range rels {
			// Each request is a decision, with its own current_time.
			dctx := subsystems.DecisionContextFor(context.Background(), p, subsystems.KindKube, time.Now())
			ok, err := m.policy.Check(dctx, p.Subject(), rel, "resource:"+r.Name)
			if err != nil {
				return id, err
			}
			if ok {
				for _, grp := range r.Kube.Groups[rel] {
					add(m.cfg.GroupPrefix + grp)
				}
			}
		}
	}
	for _, grp := range p.Groups {
		add(m.cfg.GroupPrefix + grp)
	}
	return id, nil
}

// proxyError answers requests the apiserver did not answer.
func (m *Module) proxyError(r store.Resource, up *k8s.Upstream) k8s.ErrorFunc {
	return func(w http.ResponseWriter, _ *http.Request, err error) {
		k8s.WriteStatus(w, http.StatusBadGateway, fmt.Sprintf("bastion: the apiserver of %s (%s) cannot be reached: %v; the cluster may be down: try again, or tell an admin", r.Name, up.Host(), err))
	}
}

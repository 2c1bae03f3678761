package sftp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/subsystems/reasons"
	"github.com/sshbastion/bastion/subsystems/sessions"
)

// Pods reaches the containers of a kube Resource as the user (the kube
// module): listings through the API, file operations through pods/exec,
// each as the impersonated user. A refusal of the cluster's RBAC wraps
// os.ErrPermission, with a message that says so; what is not there wraps
// os.ErrNotExist; a command that exited non-zero has ExitStatus().
type Pods interface {
	PodUser(ctx context.Context, p authn.Principal, r store.Resource) (string, error)
	PodNamespaces(ctx context.Context, p authn.Principal, r store.Resource) ([]string, error)
	PodNames(ctx context.Context, p authn.Principal, r store.Resource, ns string) ([]string, error)
	PodContainerNames(ctx context.Context, p authn.Principal, r store.Resource, ns, pod string) ([]string, error)
	PodAccess(ctx context.Context, p authn.Principal, r store.Resource, ns, pod string) error
	PodExec(ctx context.Context, p authn.Principal, r store.Resource, ns, pod, container string, argv []string, stdin io.Reader, stdout io.Writer) error
}

// podTree is a kube Resource's tree: /NAMESPACE/POD/CONTAINER/path. The
// first three levels are the API's (namespaces, pods and containers the
// user may list); below them is the container's own filesystem, reached
// with sh, stat and cat run in it (podscripts.go). Paths go to the
// container as arguments of a fixed script, never as script text.
type podTree struct {
	f      *fs
	r      store.Resource
	asUser string

	mu      sync.Mutex
	checked map[string]time.Time // ns/pod -> when its RBAC last allowed files
}

// podAccessTTL is how long a pod's RBAC answer (get pods, create
// pods/exec) is reused by one sftp channel. The apiserver checks each
// exec itself anyway: this only spares two reviews per file operation.
const podAccessTTL = 30 * time.Second

// openPods starts the tree of kube Resource r inside its session; it is
// used only once its sftp.open event is durable.
func (f *fs) openPods(r store.Resource, live *sessions.Live) (*podTree, error) {
	as, err := f.m.cfg.Pods.PodUser(f.ctx, f.p, r)
	if err != nil {
		f.say("bastion: " + err.Error())
		return nil, fmt.Errorf("%v: %w", err, sftp.ErrSSHFxNoConnection)
	}
	if _, err := f.m.audit.Append(f.ctx, store.Event{Actor: f.p.User, Action: "sftp.open", Target: r.Name, Decision: "allow",
		Details: map[string]string{"session": live.ID(), "login": as, "as_user": as, "kind": "pods", "source": f.p.SourceAddr}}); err != nil {
		f.m.lost(store.Event{Actor: f.p.User, Action: "sftp.open"}, err)
		f.say("bastion: the audit log cannot record a session on " + r.Name + " now; refused")
		return nil, fmt.Errorf("the audit log cannot record this session: %w", sftp.ErrSSHFxFailure)
	}
	return &podTree{f: f, r: r, asUser: as, checked: map[string]time.Time{}}, nil
}

// podPath is a path of the tree, split: depth 0 is the root, 1 a
// namespace, 2 a pod, 3 a container's "/", 4 a path in the container.
type podPath struct {
	ns, pod, container string
	inner              string // the path in the container ("/" at depth 3)
	depth              int
}

func splitPod(hp string) podPath {
	parts := strings.SplitN(strings.Trim(path.Clean("/"+hp), "/"), "/", 4)
	if parts[0] == "" {
		return podPath{inner: "/"}
	}
	pp := podPath{depth: len(parts), inner: "/"}
	pp.ns = parts[0]
	if len(parts) > 1 {
		pp.pod = parts[1]
	}
	if len(parts) > 2 {
		pp.container = parts[2]
	}
	if len(parts) > 3 {
		pp.inner, pp.depth = "/"+parts[3], 4
	}
	return pp
}

// prefix is the tree path of the container's "/".
func (pp podPath) prefix() string { return "/" + pp.ns + "/" + pp.pod + "/" + pp.container }

func (pp podPath) sameContainer(o podPath) bool {
	return pp.depth >= 3 && o.depth >= 3 && pp.ns == o.ns && pp.pod == o.pod && pp.container == o.container
}

// inContainer refuses what is above a container's files: namespaces,
// pods and containers are the cluster's, not made or changed over sftp.
func inContainer(pp podPath, what string) error {
	if pp.depth < 4 {
		return fmt.Errorf("%s: namespaces, pods and containers are listed here, not changed; files live under /RESOURCE/NAMESPACE/POD/CONTAINER/: %w", what, sftp.ErrSSHFxPermissionDenied)
	}
	return nil
}

func (t *podTree) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.f.ctx, time.Minute)
}

// apiErr turns an error of the kube module into the client's status: the
// cluster's refusal is audited and said, with what to ask for.
func (t *podTree) apiErr(pp podPath, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, os.ErrPermission):
		t.f.m.cfg.Metrics.refused()
		where := "/" + t.r.Name + strings.TrimSuffix("/"+strings.Join([]string{pp.ns, pp.pod, pp.container}, "/"), "/")
		ev := store.Event{Actor: t.f.p.User, Action: "sftp.deny", Target: t.r.Name, Decision: "deny", Reason: err.Error(),
			Details: map[string]string{"path": where, reasons.DetailKey: reasons.KubeRBACDenied, "as_user": t.asUser}}
		if _, aerr := t.f.m.audit.Append(t.f.ctx, ev); aerr != nil {
			t.f.m.lost(store.Event{Actor: t.f.p.User, Action: "sftp.deny"}, aerr)
		}
		t.f.say("bastion: " + where + " " + err.Error())
		return fmt.Errorf("%v: %w", err, sftp.ErrSSHFxPermissionDenied)
	case errors.Is(err, os.ErrNotExist):
		return os.ErrNotExist
	}
	t.f.say("bastion: " + err.Error())
	return fmt.Errorf("%v: %w", err, sftp.ErrSSHFxFailure)
}

// access checks, at most every podAccessTTL per pod, that the cluster's
// RBAC lets the user reach files in pp's pod.
func (t *podTree) access(pp podPath) error {
	key := pp.ns + "/" + pp.pod
	t.mu.Lock()
	at, ok := t.checked[key]
	t.mu.Unlock()
	if ok && time.Since(at) < podAccessTTL {
		return nil
	}
	ctx, cancel := t.ctx()
	defer cancel()
	if err := t.f.m.cfg.Pods.PodAccess(ctx, t.f.p, t.r, pp.ns, pp.pod); err != nil {
		return t.apiErr(pp, err)
	}
	t.mu.Lock()
	t.checked[key] = time.Now()
	t.mu.Unlock()
	return nil
}

// containerOf checks that pp's container exists in its pod.
func (t *podTree) containerOf(pp podPath) error {
	ctx, cancel := t.ctx()
	defer cancel()
	cs, err := t.f.m.cfg.Pods.PodContainerNames(ctx, t.f.p, t.r, pp.ns, pp.pod)
	if err != nil {
		return t.apiErr(pp, err)
	}
	if pp.depth >= 3 {
		for _, c := range cs {
			if c == pp.container {
				return nil
			}
		}
		return os.ErrNotExist
	}
	return nil
}

func (t *podTree) Stat(hp string) (os.FileInfo, error)  { return t.stat(hp, true) }
func (t *podTree) Lstat(hp string) (os.FileInfo, error) { return t.stat(hp, false) }

func (t *podTree) stat(hp string, follow bool) (os.FileInfo, error) {
	pp := splitPod(hp)
	switch pp.depth {
	case 0:
		return dirInfo("/"), nil
	case 1:
		return dirInfo(pp.ns), nil
	case 2:
		if err := t.containerOf(pp); err != nil {
			return nil, err
		}
		return dirInfo(pp.pod), nil
	}
	if err := t.access(pp); err != nil {
		return nil, err
	}
	script := lstatScript
	if follow {
		script = statScript
	}
	out, err := t.run(pp, script, nil, pp.inner)
	if err != nil {
		if pp.depth == 3 && errors.Is(err, os.ErrNotExist) {
			// "/" always exists: the container does not.
			return nil, t.apiErr(pp, t.containerOf(pp))
		}
		return nil, err
	}
	infos := parseStat(string(out))
	if len(infos) != 1 {
		return nil, fmt.Errorf("stat of %s in the container gave %q: %w", pp.inner, out, sftp.ErrSSHFxFailure)
	}
	fi := infos[0]
	fi.name = path.Base(pp.inner)
	if pp.depth == 3 {
		fi.name = pp.container
	}
	return fi, nil
}

func (t *podTree) ReadDir(hp string) ([]os.FileInfo, error) {
	pp := splitPod(hp)
	ctx, cancel := t.ctx()
	defer cancel()
	var names []string
	var err error
	switch pp.depth {
	case 0:
		names, err = t.f.m.cfg.Pods.PodNamespaces(ctx, t.f.p, t.r)
	case 1:
		names, err = t.f.m.cfg.Pods.PodNames(ctx, t.f.p, t.r, pp.ns)
	case 2:
		names, err = t.f.m.cfg.Pods.PodContainerNames(ctx, t.f.p, t.r, pp.ns, pp.pod)
	default:
		if err := t.access(pp); err != nil {
			return nil, err
		}
		out, err := t.run(pp, listScript, nil, pp.inner)
		if err != nil {
			return nil, err
		}
		infos := parseStat(string(out))
		fis := make([]os.FileInfo, len(infos))
		for i, fi := range infos {
			fis[i] = fi
		}
		return fis, nil
	}
	if err != nil {
		return nil, t.apiErr(pp, err)
	}
	out := make([]os.FileInfo, len(names))
	for i, n := range names {
		out[i] = dirInfo(n)
	}
	return out, nil
}

func (t *podTree) ReadLink(hp string) (string, error) {
	pp := splitPod(hp)
	if pp.depth < 4 {
		return "", fmt.Errorf("%s is not a link: %w", hp, sftp.ErrSSHFxFailure)
	}
	if err := t.access(pp); err != nil {
		return "", err
	}
	out, err := t.run(pp, readlinkScript, nil, pp.inner)
	if err != nil {
		return "", err
	}
	target := strings.TrimSuffix(string(out), "\n")
	if strings.HasPrefix(target, "/") {
		// An absolute target means the same container's file.
		target = pp.prefix() + path.Clean(target)
	}
	return target, nil
}

// RealPath cleans the path; symlinks are resolved by the container when
// the path is used, so a link can never leave it.
func (t *podTree) RealPath(hp string) (string, error) { return path.Clean("/" + hp), nil }

// in runs a fixed script on one path in the container.
func (t *podTree) in(hp, what, script string, args ...string) error {
	pp := splitPod(hp)
	if err := inContainer(pp, what); err != nil {
		return err
	}
	if err := t.access(pp); err != nil {
		return err
	}
	_, err := t.run(pp, script, nil, append([]string{pp.inner}, args...)...)
	return err
}

// two runs a fixed script on two paths of one container.
func (t *podTree) two(oldname, newname, what, script string) error {
	a, b := splitPod(oldname), splitPod(newname)
	if err := inContainer(a, what); err != nil {
		return err
	}
	if err := inContainer(b, what); err != nil {
		return err
	}
	if !a.sameContainer(b) {
		// Each container is its own filesystem: a move or link across
		// them would need a copy.
		return fmt.Errorf("%s and %s are in different containers; copy through your machine instead: %w", oldname, newname, sftp.ErrSSHFxOpUnsupported)
	}
	if err := t.access(a); err != nil {
		return err
	}
	_, err := t.run(a, script, nil, a.inner, b.inner)
	return err
}

func (t *podTree) PosixRename(o, n string) error { return t.two(o, n, "rename", posixRenameScript) }
func (t *podTree) Rename(o, n string) error      { return t.two(o, n, "rename", renameScript) }
func (t *podTree) Link(o, n string) error        { return t.two(o, n, "link", linkScript) }
func (t *podTree) Symlink(o, n string) error     { return t.two(o, n, "symlink", symlinkScript) }
func (t *podTree) RemoveDirectory(hp string) error {
	return t.in(hp, "rmdir", rmdirScript)
}
func (t *podTree) Mkdir(hp string) error  { return t.in(hp, "mkdir", mkdirScript) }
func (t *podTree) Remove(hp string) error { return t.in(hp, "remove", removeScript) }
func (t *podTree) Truncate(hp string, size int64) error {
	return t.in(hp, "truncate", truncateScript, fmt.Sprint(size))
}
func (t *podTree) Chmod(hp string, mode os.FileMode) error {
	return t.in(hp, "chmod", chmodScript, fmt.Sprintf("%o", unixPerm(mode)))
}
func (t *podTree) Chtimes(hp string, _, mtime time.Time) error {
	return t.in(hp, "chtimes", touchScript, fmt.Sprint(mtime.Unix()))
}
func (t *podTree) Chown(hp string, uid, gid int) error {
	return t.in(hp, "chown", chownScript, fmt.Sprintf("%d:%d", uid, gid))
}

// Close ends nothing: every exec ended with its operation.
func (t *podTree) Close() error { return nil }

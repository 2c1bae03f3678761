package sftp

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pkg/sftp"

	"github.com/sshbastion/bastion/store"
)

// record audits one file operation: op, Resource, path, bytes, result.
// It returns an error, never nil-on-failure: an operation whose event is
// not durable must not proceed (or, when it already ran, must be counted
// as lost and end the channel), so the caller refuses with errAudit.
func (f *fs) record(op, resource, p string, bytes int64, result error) error {
	d := map[string]string{"path": p, "result": "ok"}
	if bytes >= 0 {
		d["bytes"] = strconv.FormatInt(bytes, 10)
	}
	dec := "allow"
	if result == errStarted {
		d["result"] = "started"
	} else if result != nil {
		d["result"] = result.Error()
		dec = "error"
	}
	if result != errStarted {
		f.m.cfg.Metrics.op(op, result)
	}
	if _, err := f.m.audit.Append(f.ctx, store.Event{Actor: f.p.User, Action: "sftp." + op, Target: resource, Decision: dec, Details: d}); err != nil {
		f.m.lost(store.Event{Actor: f.p.User, Action: "sftp." + op}, err)
		f.say("bastion: the audit log cannot record file operations now; refused")
		return fmt.Errorf("the audit log cannot record this operation: %w", sftp.ErrSSHFxFailure)
	}
	return nil
}

// maxPath bounds every path a client sends (PATH_MAX on Linux).
const maxPath = 4096

// errStarted marks the event written before an operation runs: a change
// on a host (open, mkdir, rename, remove, setstat, ...) happens only once
// its event is durable.
var errStarted = errors.New("started")

// recordAfter audits the result of an operation that already ran. If the
// event cannot be written, the loss is counted and the channel is ended:
// nothing more happens on it without its record.
func (f *fs) recordAfter(op, resource, p string, bytes int64, result error) error {
	if err := f.record(op, resource, p, bytes, result); err != nil {
		if f.closeChannel != nil {
			f.closeChannel()
		}
		return err
	}
	return result
}

// at resolves a request path to its host, refusing the virtual root for
// operations that need a Resource.
func (f *fs) at(p string) (*host, string, error) {
	if len(p) > maxPath {
		// Input bound at the edge, as PATH_MAX bounds paths on the host.
		return nil, "", fmt.Errorf("a path of %d bytes is over the limit of %d: %w", len(p), maxPath, sftp.ErrSSHFxBadMessage)
	}
	res, hp := resolve(p)
	if res == "" {
		return nil, "", fmt.Errorf("/ lists the hosts you may reach; files live under /HOST/: %w", sftp.ErrSSHFxPermissionDenied)
	}
	h, err := f.host(res)
	if err != nil {
		return nil, "", err
	}
	return h, hp, nil
}

func openFlags(fl sftp.FileOpenFlags) int {
	var flags int
	switch {
	case fl.Read && fl.Write:
		flags = os.O_RDWR
	case fl.Write:
		flags = os.O_WRONLY
	default:
		flags = os.O_RDONLY
	}
	if fl.Append {
		flags |= os.O_APPEND
	}
	if fl.Creat {
		flags |= os.O_CREATE
	}
	if fl.Trunc {
		flags |= os.O_TRUNC
	}
	if fl.Excl {
		flags |= os.O_EXCL
	}
	return flags
}

// Fileread opens a file for reading on its host.
func (f *fs) Fileread(r *sftp.Request) (io.ReaderAt, error) { return f.open(r, "read") }

// Filewrite opens a file for writing on its host.
func (f *fs) Filewrite(r *sftp.Request) (io.WriterAt, error) { return f.open(r, "write") }

// OpenFile opens a file for reading and writing on its host.
func (f *fs) OpenFile(r *sftp.Request) (sftp.WriterAtReaderAt, error) { return f.open(r, "open") }

func (f *fs) open(r *sftp.Request, op string) (*handle, error) {
	h, hp, err := f.at(r.Filepath)
	if err != nil {
		return nil, err
	}
	flags := openFlags(r.Pflags())
	if op == "read" {
		flags = os.O_RDONLY
	}
	if err := f.record(op, h.r.Name, hp, -1, errStarted); err != nil {
		return nil, err
	}
	rf, err := h.sftp.OpenFile(hp, flags)
	if err != nil {
		return nil, f.recordAfter(op, h.r.Name, hp, -1, remoteErr(err))
	}
	return &handle{f: f, h: h, file: rf, op: op, path: hp}, nil
}

// handle is an open file on a host. Reads and writes stream through in
// the client's chunks; nothing is held whole. It is audited once, on
// close, with the bytes moved.
type handle struct {
	f         *fs
	h         *host
	file      file
	op, path  string
	read, put atomic.Int64
	closed    atomic.Bool
}

func (x *handle) ReadAt(p []byte, off int64) (int, error) {
	n, err := x.file.ReadAt(p, off)
	x.read.Add(int64(n))
	x.h.live.CountOut(n)
	x.f.m.cfg.Metrics.downloaded(n)
	if err != nil && err != io.EOF {
		err = remoteErr(err)
	}
	return n, err
}

func (x *handle) WriteAt(p []byte, off int64) (int, error) {
	n, err := x.file.WriteAt(p, off)
	x.put.Add(int64(n))
	x.h.live.CountIn(n)
	x.f.m.cfg.Metrics.uploaded(n)
	return n, remoteErr(err)
}

func (x *handle) Close() error {
	if x.closed.Swap(true) {
		return nil
	}
	err := remoteErr(x.file.Close())
	op, n := x.op, x.read.Load()+x.put.Load()
	if op == "open" {
		op = "read"
		if x.put.Load() > 0 {
			op = "write"
		}
	}
	return x.f.recordAfter(op, x.h.r.Name, x.path, n, err)
}

// Filecmd runs Setstat, Rename, Rmdir, Mkdir, Link, Symlink and Remove.
func (f *fs) Filecmd(r *sftp.Request) error {
	op := strings.ToLower(r.Method)
	if op == "posixrename" {
		op = "rename"
	}
	h, hp, err := f.at(r.Filepath)
	if err != nil {
		return err
	}
	if len(r.Target) > maxPath {
		return fmt.Errorf("a path of %d bytes is over the limit of %d: %w", len(r.Target), maxPath, sftp.ErrSSHFxBadMessage)
	}
	shown := hp
	switch r.Method {
	case "Rename", "PosixRename", "Link", "Symlink":
		_, hp2 := resolve(r.Target)
		shown = hp + " -> " + hp2
	}
	if err := f.record(op, h.r.Name, shown, -1, errStarted); err != nil {
		return err
	}
	c := h.sftp
	switch r.Method {
	case "Setstat":
		err = f.setstat(c, hp, r)
	case "Rename", "PosixRename", "Link", "Symlink":
		// Both ends must be on the same host: a rename or link across
		// Resources would move data past the other Resource's gate.
		res2, hp2 := resolve(r.Target)
		if res2 != h.r.Name {
			err = fmt.Errorf("%s and %s are on different hosts; copy through your machine instead: %w", r.Filepath, r.Target, sftp.ErrSSHFxOpUnsupported)
			break
		}
		switch r.Method {
		case "Rename", "PosixRename":
			if err = c.PosixRename(hp, hp2); errors.Is(err, sftp.ErrSSHFxOpUnsupported) || isUnsupported(err) {
				err = c.Rename(hp, hp2)
			}
		case "Link":
			err = c.Link(hp, hp2)
		default: // Symlink: Filepath is the link's target, Target the new link
			err = c.Symlink(hp, hp2)
		}
	case "Rmdir":
		err = c.RemoveDirectory(hp)
	case "Mkdir":
		err = c.Mkdir(hp)
	case "Remove":
		err = c.Remove(hp)
	default:
		err = fmt.Errorf("%s is not supported: %w", r.Method, sftp.ErrSSHFxOpUnsupported)
	}
	return f.recordAfter(op, h.r.Name, shown, -1, remoteErr(err))
}

// PosixRename is rename that replaces the target, as OpenSSH's sftp asks.
func (f *fs) PosixRename(r *sftp.Request) error { return f.Filecmd(r) }

func (f *fs) setstat(c tree, hp string, r *sftp.Request) error {
	a, fl := r.Attributes(), r.AttrFlags()
	if fl.Size {
		if err := c.Truncate(hp, int64(a.Size)); err != nil {
			return err
		}
	}
	if fl.Permissions {
		if err := c.Chmod(hp, a.FileMode().Perm()|a.FileMode()&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky)); err != nil {
			return err
		}
	}
	if fl.Acmodtime {
		if err := c.Chtimes(hp, time.Unix(int64(a.Atime), 0), time.Unix(int64(a.Mtime), 0)); err != nil {
			return err
		}
	}
	if fl.UidGid {
		if err := c.Chown(hp, int(a.UID), int(a.GID)); err != nil {
			return err
		}
	}
	return nil
}

// Filelist serves List, Stat and Readlink.
func (f *fs) Filelist(r *sftp.Request) (sftp.ListerAt, error) {
	return f.list(r, false)
}

// Lstat is Stat without following a final symlink.
func (f *fs) Lstat(r *sftp.Request) (sftp.ListerAt, error) { return f.list(r, true) }

func (f *fs) list(r *sftp.Request, lstat bool) (sftp.ListerAt, error) {
	if len(r.Filepath) > maxPath {
		return nil, fmt.Errorf("a path of %d bytes is over the limit of %d: %w", len(r.Filepath), maxPath, sftp.ErrSSHFxBadMessage)
	}
	res, hp := resolve(r.Filepath)
	if res == "" {
		if r.Method == "List" {
			return f.rootList()
		}
		return listerAt{dirInfo("/")}, nil
	}
	h, err := f.host(res)
	if err != nil {
		return nil, err
	}
	c := h.sftp
	switch r.Method {
	case "List":
		infos, err := c.ReadDir(hp)
		// The listing reaches the client only once its event is durable.
		if err := f.record("list", res, hp, int64(len(infos)), remoteErr(err)); err != nil {
			return nil, err
		}
		if err != nil {
			return nil, remoteErr(err)
		}
		out := make(listerAt, len(infos))
		for i, fi := range infos {
			out[i] = withOwner(fi)
		}
		return out, nil
	case "Readlink":
		target, err := c.ReadLink(hp)
		if err != nil {
			return nil, remoteErr(err)
		}
		return listerAt{named{FileInfo: dirInfo(""), name: virtual(res, target)}}, nil
	}
	var fi os.FileInfo
	if lstat {
		fi, err = c.Lstat(hp)
	} else {
		fi, err = c.Stat(hp)
	}
	if err != nil {
		return nil, remoteErr(err)
	}
	if hp == "/" {
		fi = named{FileInfo: fi, name: res}
	}
	return listerAt{withOwner(fi)}, nil
}

// Readlink returns a link's target, absolute ones under the same Resource.
func (f *fs) Readlink(p string) (string, error) {
	h, hp, err := f.at(p)
	if err != nil {
		return "", err
	}
	target, err := h.sftp.ReadLink(hp)
	if err != nil {
		return "", remoteErr(err)
	}
	return virtual(h.r.Name, target), nil
}

// RealPath resolves symlinks on the host, and keeps the result under the
// same Resource.
func (f *fs) RealPath(p string) (string, error) {
	res, hp := resolve(p)
	if res == "" {
		return "/", nil
	}
	h, err := f.host(res)
	if err != nil {
		return "", err
	}
	real, err := h.sftp.RealPath(hp)
	if err != nil {
		// A path that does not exist yet (an upload's target) is fine.
		return path.Clean("/" + res + hp), nil
	}
	return virtual(res, real), nil
}

// rootList is the virtual root: the ssh Resources the user may act on.
func (f *fs) rootList() (sftp.ListerAt, error) {
	all, err := f.m.resources.ListResources(f.ctx)
	if err != nil {
		return nil, err
	}
	ids, err := f.m.policy.ListObjects(f.decision(), f.p.Subject(), "act", "resource")
	if err != nil {
		return nil, fmt.Errorf("the policy could not be evaluated: %w", sftp.ErrSSHFxFailure)
	}
	act := map[string]bool{}
	for _, id := range ids {
		act[strings.TrimPrefix(id, "resource:")] = true
	}
	var out listerAt
	for _, r := range all {
		if (r.Kind == "ssh" || r.Kind == "kube" && f.m.cfg.Pods != nil) && act[r.Name] {
			out = append(out, dirInfo(r.Name))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	if err := f.record("list", "", "/", int64(len(out)), nil); err != nil {
		return nil, err
	}
	return out, nil
}

// isUnsupported reports a host's SSH_FX_OP_UNSUPPORTED status.
func isUnsupported(err error) bool {
	var se *sftp.StatusError
	return errors.As(err, &se) && se.FxCode() == sftp.ErrSSHFxOpUnsupported
}

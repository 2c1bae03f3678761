package sftp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/pkg/sftp"
)

// The scripts run in a container as `sh -c SCRIPT sh ARGS...`: paths are
// only ever arguments ("$1"), so no file name is parsed as shell text.
// They need sh, stat and cat (and mkdir, rm, mv, ln, ... for changes),
// which busybox and coreutils both have. Exit codes the bastion reads:
// 2 no such file, 13 permission denied, 17 exists, 20 not a directory,
// 21 is a directory, 95 unsupported.
const (
	statFormat = `'%f %s %Y %u %g %n'`
	exists     = `{ [ -e "$1" ] || [ -L "$1" ]; } || exit 2; `
	statScript = exists + `exec stat -L -c ` + statFormat + ` -- "$1"`

	lstatScript = exists + `exec stat -c ` + statFormat + ` -- "$1"`
	listScript  = exists + `[ -d "$1" ] || exit 20; cd -- "$1" 2>/dev/null || exit 13; set --; ` +
		`for f in * .[!.]* ..?*; do if [ -e "$f" ] || [ -L "$f" ]; then set -- "$@" "$f"; fi; done; ` +
		`[ $# -eq 0 ] && exit 0; stat -c ` + statFormat + ` -- "$@"; exit 0`
	readlinkScript    = exists + `exec readlink -- "$1"`
	mkdirScript       = `{ [ -e "$1" ] || [ -L "$1" ]; } && exit 17; exec mkdir -- "$1"`
	rmdirScript       = exists + `[ -d "$1" ] || exit 20; exec rmdir -- "$1"`
	removeScript      = exists + `[ -d "$1" ] && [ ! -L "$1" ] && exit 21; exec rm -f -- "$1"`
	renameScript      = exists + `{ [ -e "$2" ] || [ -L "$2" ]; } && exit 17; exec mv -- "$1" "$2"`
	posixRenameScript = exists + `exec mv -f -- "$1" "$2"`
	linkScript        = exists + `exec ln -- "$1" "$2"`
	symlinkScript     = `exec ln -s -- "$1" "$2"`
	truncateScript    = exists + `exec truncate -s "$2" -- "$1"`
	chmodScript       = exists + `exec chmod "$2" -- "$1"`
	touchScript       = exists + `exec touch -c -d "@$2" -- "$1"`
	chownScript       = exists + `exec chown "$2" -- "$1"`

	// readScript says "ok" once the file is there and readable, then
	// streams it from byte $2 (1: the start).
	readScript = exists + `[ -d "$1" ] && exit 21; [ -r "$1" ] || exit 13; printf ok; ` +
		`[ "$2" -gt 1 ] && exec tail -c +"$2" -- "$1"; exec cat -- "$1"`
	// writeScript prepares the file as $2 says (trunc, append, fresh:
	// only a new or empty file; excl: only a new one), says "ok", then
	// appends its stdin. cat must not be the script's last command: a
	// shell execs that one in its own place, with its stdout on the file,
	// and the container runtime (containerd here, tried with kubectl too)
	// closes an exec's stdin soon after its stdout closed, cutting the
	// upload short. "; exit $?" keeps the shell, and its stdout, alive.
	writeScript = `case "$2" in excl) { [ -e "$1" ] || [ -L "$1" ]; } && exit 17;; ` +
		`fresh) [ -s "$1" ] && exit 95;; esac; [ -d "$1" ] && exit 21; ` +
		`case "$2" in append) { : >> "$1"; } 2>/dev/null;; *) { : > "$1"; } 2>/dev/null;; esac || ` +
		`{ [ -d "$(dirname -- "$1")" ] || exit 2; exit 13; }; printf ok; cat >> "$1"; exit $?`
)

// run runs script in pp's container, with stdin, and returns its stdout.
func (t *podTree) run(pp podPath, script string, stdin io.Reader, args ...string) ([]byte, error) {
	ctx, cancel := t.ctx()
	defer cancel()
	var out bytes.Buffer
	err := t.f.m.cfg.Pods.PodExec(ctx, t.f.p, t.r, pp.ns, pp.pod, pp.container, append([]string{"sh", "-c", script, "sh"}, args...), stdin, &out)
	return out.Bytes(), t.execErr(pp, err)
}

// execErr turns the end of a command into the client's status.
func (t *podTree) execErr(pp podPath, err error) error {
	var exit interface{ ExitStatus() int }
	if !errors.As(err, &exit) {
		return t.apiErr(pp, err)
	}
	msg := strings.TrimSpace(strings.TrimPrefix(err.Error(), fmt.Sprintf("exit %d", exit.ExitStatus())))
	msg = strings.TrimPrefix(msg, ": ")
	switch code := exit.ExitStatus(); {
	case code == 2 || strings.Contains(msg, "No such file or directory"):
		return os.ErrNotExist
	case code == 13 || strings.Contains(msg, "Permission denied") || strings.Contains(msg, "Read-only file system"):
		return fmt.Errorf("permission denied in the container: %w", sftp.ErrSSHFxPermissionDenied)
	case code == 17 || strings.Contains(msg, "File exists"):
		return fmt.Errorf("it exists already: %w", sftp.ErrSSHFxFailure)
	case code == 20:
		return fmt.Errorf("not a directory: %w", sftp.ErrSSHFxFailure)
	case code == 21:
		return fmt.Errorf("it is a directory: %w", sftp.ErrSSHFxFailure)
	case code == 95:
		t.f.say("bastion: a file in a pod is written whole: overwriting part of an existing file is not supported; upload it again whole")
		return fmt.Errorf("partial overwrite: %w", sftp.ErrSSHFxOpUnsupported)
	case code == 126 || code == 127:
		// The shell is there, one of the tools is not.
		t.f.say(fmt.Sprintf("bastion: container %s of pod %s/%s lacks a command the bastion needs (sh, stat, cat, ...): %s", pp.container, pp.ns, pp.pod, msg))
		return fmt.Errorf("missing command in the container: %w", sftp.ErrSSHFxOpUnsupported)
	}
	if msg == "" {
		msg = err.Error()
	}
	t.f.say("bastion: in container " + pp.container + " of " + pp.ns + "/" + pp.pod + ": " + msg)
	return fmt.Errorf("%s: %w", msg, sftp.ErrSSHFxFailure)
}

// podInfo is one entry of `stat -c '%f %s %Y %u %g %n'`.
type podInfo struct {
	name     string
	size     int64
	mode     os.FileMode
	mtime    time.Time
	uid, gid uint32
}

func (i podInfo) Name() string       { return i.name }
func (i podInfo) Size() int64        { return i.size }
func (i podInfo) Mode() os.FileMode  { return i.mode }
func (i podInfo) ModTime() time.Time { return i.mtime }
func (i podInfo) IsDir() bool        { return i.mode.IsDir() }
func (i podInfo) Sys() any           { return nil }
func (i podInfo) Uid() uint32        { return i.uid }
func (i podInfo) Gid() uint32        { return i.gid }

// parseStat reads stat's lines; a line it cannot read (a name with a
// newline in it) is left out.
func parseStat(out string) []podInfo {
	var infos []podInfo
	for _, line := range strings.Split(out, "\n") {
		f := strings.SplitN(line, " ", 6)
		if len(f) != 6 {
			continue
		}
		mode, err1 := strconv.ParseUint(f[0], 16, 32)
		size, err2 := strconv.ParseInt(f[1], 10, 64)
		mt, err3 := strconv.ParseInt(f[2], 10, 64)
		uid, err4 := strconv.ParseUint(f[3], 10, 32)
		gid, err5 := strconv.ParseUint(f[4], 10, 32)
		if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
			continue
		}
		infos = append(infos, podInfo{name: f[5], size: size, mode: goMode(uint32(mode)), mtime: time.Unix(mt, 0), uid: uint32(uid), gid: uint32(gid)})
	}
	return infos
}

// goMode converts a raw st_mode to os.FileMode.
func goMode(m uint32) os.FileMode {
	fm := os.FileMode(m & 0o777)
	switch m & 0o170000 {
	case 0o040000:
		fm |= os.ModeDir
	case 0o120000:
		fm |= os.ModeSymlink
	case 0o010000:
		fm |= os.ModeNamedPipe
	case 0o140000:
		fm |= os.ModeSocket
	case 0o020000:
		fm |= os.ModeDevice | os.ModeCharDevice
	case 0o060000:
		fm |= os.ModeDevice
	}
	if m&0o4000 != 0 {
		fm |= os.ModeSetuid
	}
	if m&0o2000 != 0 {
		fm |= os.ModeSetgid
	}
	if m&0o1000 != 0 {
		fm |= os.ModeSticky
	}
	return fm
}

// unixPerm is the chmod mode of m.
func unixPerm(m os.FileMode) uint32 {
	p := uint32(m.Perm())
	if m&os.ModeSetuid != 0 {
		p |= 0o4000
	}
	if m&os.ModeSetgid != 0 {
		p |= 0o2000
	}
	if m&os.ModeSticky != 0 {
		p |= 0o1000
	}
	return p
}

package sftp

import (
	"io"
	"os"
	"time"

	"github.com/pkg/sftp"
)

// listerAt serves a fixed list of entries.
type listerAt []os.FileInfo

func (l listerAt) ListAt(dst []os.FileInfo, off int64) (int, error) {
	if off >= int64(len(l)) {
		return 0, io.EOF
	}
	n := copy(dst, l[off:])
	if off+int64(n) >= int64(len(l)) {
		return n, io.EOF
	}
	return n, nil
}

// vdir is a directory of the virtual tree (the root and its hosts).
type vdir struct{ name string }

func dirInfo(name string) os.FileInfo { return vdir{name} }

func (d vdir) Name() string       { return d.name }
func (d vdir) Size() int64        { return 0 }
func (d vdir) Mode() os.FileMode  { return os.ModeDir | 0o555 }
func (d vdir) ModTime() time.Time { return time.Unix(0, 0) }
func (d vdir) IsDir() bool        { return true }
func (d vdir) Sys() any           { return nil }

// named renames an entry (a host's "/" shown as the host's name).
type named struct {
	os.FileInfo
	name string
}

func (n named) Name() string { return n.name }

// owned passes the host's uid and gid through to the client's `ls -l`.
type owned struct {
	os.FileInfo
	st *sftp.FileStat
}

func (o owned) Uid() uint32 { return o.st.UID }
func (o owned) Gid() uint32 { return o.st.GID }

func withOwner(fi os.FileInfo) os.FileInfo {
	if st, ok := fi.Sys().(*sftp.FileStat); ok {
		return owned{FileInfo: fi, st: st}
	}
	return fi
}

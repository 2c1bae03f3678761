package sftp

import (
	"io"
	"os"
	"time"

	"github.com/pkg/sftp"
)

// tree is one Resource's filesystem as the handlers use it, in that
// Resource's own paths: a host's, through an onward SFTP client
// (sftpTree), or a kube Resource's pods, through pods/exec (podTree).
type tree interface {
	OpenFile(path string, flags int) (file, error)
	ReadDir(path string) ([]os.FileInfo, error)
	Stat(path string) (os.FileInfo, error)
	Lstat(path string) (os.FileInfo, error)
	ReadLink(path string) (string, error)
	RealPath(path string) (string, error)
	PosixRename(oldname, newname string) error
	Rename(oldname, newname string) error
	Link(oldname, newname string) error
	Symlink(oldname, newname string) error
	RemoveDirectory(path string) error
	Mkdir(path string) error
	Remove(path string) error
	Truncate(path string, size int64) error
	Chmod(path string, mode os.FileMode) error
	Chtimes(path string, atime, mtime time.Time) error
	Chown(path string, uid, gid int) error
	Close() error
}

// file is an open file of a tree.
type file interface {
	io.ReaderAt
	io.WriterAt
	io.Closer
}

// sftpTree is a host's tree: the onward SFTP client as it is.
type sftpTree struct{ *sftp.Client }

func (t sftpTree) OpenFile(path string, flags int) (file, error) {
	return t.Client.OpenFile(path, flags)
}

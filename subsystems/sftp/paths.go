package sftp

import (
	"path"
	"strings"
)

// resolve maps a virtual path to the Resource it is under and the path on
// that Resource's host. The root itself has no Resource ("", "/").
//
// Why this is the only path function: every request path comes from the
// client, and a path that escaped its Resource could reach a host the
// user may not act on. Cleaning the whole virtual path first means `..`
// can only climb to the virtual root, never out of the host path, and the
// first element alone names the Resource that is then gated.
func resolve(p string) (resource, hostPath string) {
	p = path.Clean("/" + p)
	if p == "/" {
		return "", "/"
	}
	resource, rest, _ := strings.Cut(p[1:], "/")
	return resource, "/" + rest
}

// virtual maps a path on resource's host back to the client's tree. A
// relative link target stays relative (the client resolves it in the same
// directory); an absolute one is placed under the Resource, so that a
// link on host-1 to /etc can only ever mean host-1's /etc.
func virtual(resource, hostPath string) string {
	if !strings.HasPrefix(hostPath, "/") {
		return hostPath
	}
	hp := path.Clean(hostPath)
	if hp == "/" {
		return "/" + resource
	}
	return "/" + resource + hp
}

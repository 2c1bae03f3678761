package harness

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// The test cluster has no registry: its two images are made here, as
// single-layer OCI archives that `ctr images import` reads, and pods use
// them with imagePullPolicy: Never.
const (
	// PauseImage is every pod's sandbox: a static Go program that sleeps
	// until SIGTERM and reaps children.
	PauseImage = "localhost/bastion/pause:local"
	// BusyboxImage holds Debian's static busybox with all its applets
	// (sh, tar, cat, httpd, nc, ...), /etc/passwd for root, a writable
	// /tmp and /www/index.html ("hello-from-pod").
	BusyboxImage = "localhost/bastion/busybox:local"
)

const pauseSource = `// pause: the pod sandbox; sleeps until SIGTERM/SIGINT, reaping children.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	c := make(chan os.Signal, 8)
	signal.Notify(c, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range c {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var ws syscall.WaitStatus
			if pid, _ := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); pid <= 0 {
				break
			}
		}
	}
}
`

// busyboxPath is where Debian's busybox-static puts its binary.
const busyboxPath = "/bin/busybox"

// layerFile is one entry of an image layer.
type layerFile struct {
	name, link string
	mode       int64
	data       []byte
	dir        bool
}

// buildImages writes pause.tar and busybox.tar into dir and returns their
// paths.
func buildImages(dir string) (pause, busybox string, err error) {
	src := filepath.Join(dir, "pausesrc")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte(pauseSource), 0o644); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module pause\n\ngo 1.22\n"), 0o644); err != nil {
		return "", "", err
	}
	bin := filepath.Join(dir, "pause")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
	build.Dir = src
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=-mod=mod")
	if out, err := build.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("build pause: %v\n%s", err, out)
	}
	pauseBin, err := os.ReadFile(bin)
	if err != nil {
		return "", "", err
	}
	pause = filepath.Join(dir, "pause.tar")
	if err := writeImage(pause, PauseImage, []layerFile{{name: "pause", mode: 0o755, data: pauseBin}}, []string{"/pause"}, nil); err != nil {
		return "", "", err
	}

	bb, err := os.ReadFile(busyboxPath)
	if err != nil {
		return "", "", fmt.Errorf("%v: install busybox-static (scripts/install-kube.sh does)", err)
	}
	list, err := exec.Command(busyboxPath, "--list").Output()
	if err != nil {
		return "", "", fmt.Errorf("busybox --list: %v", err)
	}
	files := []layerFile{
		{name: "bin", dir: true, mode: 0o755},
		{name: "bin/busybox", mode: 0o755, data: bb},
		{name: "etc", dir: true, mode: 0o755},
		{name: "etc/passwd", mode: 0o644, data: []byte("root:x:0:0:root:/root:/bin/sh\n")},
		{name: "etc/group", mode: 0o644, data: []byte("root:x:0:\n")},
		{name: "root", dir: true, mode: 0o700},
		{name: "tmp", dir: true, mode: 0o1777},
		{name: "www", dir: true, mode: 0o755},
		{name: "www/index.html", mode: 0o644, data: []byte("hello-from-pod\n")},
	}
	for _, a := range strings.Fields(string(list)) {
		if a != "busybox" && !strings.Contains(a, "/") {
			files = append(files, layerFile{name: "bin/" + a, link: "busybox", mode: 0o777})
		}
	}
	busybox = filepath.Join(dir, "busybox.tar")
	if err := writeImage(busybox, BusyboxImage, files, nil, []string{"sh"}); err != nil {
		return "", "", err
	}
	return pause, busybox, nil
}

// writeImage writes an OCI image layout archive (oci-layout, index.json,
// blobs) holding one image of one layer.
func writeImage(path, name string, files []layerFile, entrypoint, cmd []string) error {
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		switch {
		case f.dir:
			h.Typeflag, h.Name, h.Size = tar.TypeDir, f.name+"/", 0
		case f.link != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, f.link, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	blobs := map[string][]byte{}
	put := func(b []byte) (string, int) {
		sum := sha256.Sum256(b)
		d := hex.EncodeToString(sum[:])
		blobs[d] = b
		return "sha256:" + d, len(b)
	}
	layerDigest, layerSize := put(layer.Bytes())
	config, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Env": []string{"PATH=/bin"}, "Entrypoint": entrypoint, "Cmd": cmd, "WorkingDir": "/"},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{layerDigest}},
	})
	configDigest, configSize := put(config)
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": configDigest, "size": configSize},
		"layers": []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layerDigest, "size": layerSize}},
	})
	manifestDigest, manifestSize := put(manifest)
	index, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"manifests": []any{map[string]any{
			"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifestDigest, "size": manifestSize,
			"platform":    map[string]string{"architecture": "amd64", "os": "linux"},
			"annotations": map[string]string{"io.containerd.image.name": name, "org.opencontainers.image.ref.name": name[strings.LastIndexByte(name, ':')+1:]},
		}},
	})

	out, err := os.Create(path)
	if err != nil {
		return err
	}
	defer out.Close()
	aw := tar.NewWriter(out)
	add := func(name string, b []byte) error {
		if err := aw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := aw.Write(b)
		return err
	}
	if err := add("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	if err := add("index.json", index); err != nil {
		return err
	}
	for d, b := range blobs {
		if err := add("blobs/sha256/"+d, b); err != nil {
			return err
		}
	}
	if err := aw.Close(); err != nil {
		return err
	}
	return out.Close()
}

package harness

import (
	"fmt"
	"path/filepath"
)

// The node's configuration files. Ports are fixed: they live in the node's
// own network namespace, where nothing else listens.

// containerdConfig is containerd's config, with its state in dir.
//   - restrict_oom_score_adj: this machine's root lacks CAP_SYS_RESOURCE, so
//     nothing may go below containerd's own oom_score_adj; without it runc
//     fails every sandbox ("can't get final child's PID from pipe").
//   - the sandbox image is the imported pause image (no registry).
//   - the CRI streaming server (exec, attach, port-forward behind the
//     kubelet) listens on the namespace's loopback.
func containerdConfig(dir, sock string) string {
	return fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = %q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  stream_server_address = "127.0.0.1"
  stream_server_port = "10010"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %q
`, filepath.Join(dir, "containerd", "root"), filepath.Join(dir, "containerd", "state"), sock, PauseImage,
		filepath.Join(dir, "cni", "net.d"))
}

// cniConfig puts pods on the bridge cni0 that the holder made, in
// 10.88.0.0/24, without masquerading by the plugin; their one route out,
// to 10.89.0.0/16 through the node, reaches the host's end of the egress
// veth (kubelet_net.go), which the node masquerades.
const cniConfig = `{"cniVersion": "0.4.0", "name": "bastion-e2e", "plugins": [{"type": "bridge", "bridge": "cni0",
 "isGateway": true, "ipMasq": false, "hairpinMode": true,
 "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.88.0.0/24", "gateway": "` + nodeIP + `"}]],
  "routes": [{"dst": "10.89.0.0/16"}]}}]}
`

// kubeletConfig is the kubelet's configuration: it serves on the node IP
// (the apiserver reaches it there for exec, logs and port-forward), trusts
// client certs of the test CA and asks the apiserver about everything else
// (webhook authn/authz), and puts its cgroups under cg.
func kubeletConfig(dir, sock, cg string) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %s
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %s}
authorization: {mode: Webhook}
cgroupDriver: cgroupfs
cgroupRoot: /%s
failSwapOn: false
containerRuntimeEndpoint: unix://%s
podLogsDir: %s
resolvConf: /etc/resolv.conf
serializeImagePulls: false
`, nodeIP, filepath.Join(dir, "ca.crt"), cg, sock, filepath.Join(dir, "podlogs"))
}

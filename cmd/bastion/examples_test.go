package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"gopkg.in/yaml.v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// k8sObjects decodes every document of the YAML files in dir strictly
// (unknown or duplicate fields are errors), as the apiserver would.
func k8sObjects(t *testing.T, dir string) map[string][]runtime.Object {
	t.Helper()
	sc := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{appsv1.AddToScheme, corev1.AddToScheme, policyv1.AddToScheme, rbacv1.AddToScheme} {
		if err := add(sc); err != nil {
			t.Fatal(err)
		}
	}
	dec := serializer.NewCodecFactory(sc, serializer.EnableStrict).UniversalDeserializer()
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if len(files) == 0 {
		t.Fatalf("no YAML in %s", dir)
	}
	out := map[string][]runtime.Object{}
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
		for {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if len(bytes.TrimSpace(doc)) == 0 {
				continue
			}
			obj, _, err := dec.Decode(doc, nil, nil)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			out[filepath.Base(f)] = append(out[filepath.Base(f)], obj)
		}
	}
	return out
}

func one[T runtime.Object](t *testing.T, objs map[string][]runtime.Object, file string) T {
	t.Helper()
	if len(objs[file]) != 1 {
		t.Fatalf("%s: %d objects, want 1", file, len(objs[file]))
	}
	o, ok := objs[file][0].(T)
	if !ok {
		t.Fatalf("%s holds a %T", file, objs[file][0])
	}
	return o
}

func TestExamplesK8s(t *testing.T) {
	dir := filepath.Join("..", "..", "examples", "k8s")
	objs := k8sObjects(t, dir)
	k8sObjects(t, filepath.Join("..", "..", "examples", "kube"))

	// The kustomization lists every manifest, and only existing ones.
	var kz struct {
		APIVersion string   `yaml:"apiVersion"`
		Kind       string   `yaml:"kind"`
		Resources  []string `yaml:"resources"`
	}
	raw, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	d := yaml.NewDecoder(bytes.NewReader(raw))
	d.KnownFields(true)
	if err := d.Decode(&kz); err != nil || kz.Kind != "Kustomization" {
		t.Fatalf("kustomization.yaml: %v %+v", err, kz)
	}
	if len(kz.Resources) != len(objs) {
		t.Errorf("kustomization lists %v, the folder has %d manifests", kz.Resources, len(objs))
	}
	for _, r := range kz.Resources {
		if objs[r] == nil {
			t.Errorf("kustomization lists %s, which is not a manifest here", r)
		}
	}

	cm := one[*corev1.ConfigMap](t, objs, "configmap.yaml")
	cfg, err := parseConfig([]byte(cm.Data["config.yaml"]))
	if err != nil {
		t.Fatalf("configmap config.yaml: %v", err)
	}
	if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(cm.Data["admin.pub"])); err != nil {
		t.Errorf("configmap admin.pub: %v", err)
	}

	dep := one[*appsv1.Deployment](t, objs, "deployment.yaml")
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 3 {
		t.Errorf("replicas: %v", dep.Spec.Replicas)
	}
	pod := dep.Spec.Template
	c := pod.Spec.Containers[0]
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if !strings.HasSuffix(cfg.Listen, ":2222") || ports["ssh"] != 2222 || !strings.HasSuffix(cfg.MetricsListen, ":9222") || ports["metrics"] != 9222 {
		t.Errorf("ports %v, config listen %s metrics %s", ports, cfg.Listen, cfg.MetricsListen)
	}
	for _, env := range c.Env {
		if env.Name == "BASTION_STORE" {
			if err := cfg.applyStoreEnv(env.Value); err != nil || cfg.Store.Backend != "etcd" {
				t.Errorf("BASTION_STORE %q: %v", env.Value, err)
			}
		}
	}
	if cfg.Store.Backend != "etcd" || cfg.Store.validate() != nil {
		t.Errorf("store: %+v", cfg.Store)
	}
	for name, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port.String() != "metrics" {
			t.Errorf("%s probe: %+v", name, p)
		}
	}
	sc, psc := c.SecurityContext, pod.Spec.SecurityContext
	if sc == nil || psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || sc.ReadOnlyRootFilesystem == nil ||
		!*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("security context: %+v %+v", psc, sc)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources: %+v", c.Resources)
	}
	if !strings.Contains(strings.Join(c.Args, " "), "--config=/etc/bastion/config.yaml") {
		t.Errorf("args: %v", c.Args)
	}
	for _, v := range pod.Spec.Volumes {
		if v.ConfigMap != nil && v.ConfigMap.Name != cm.Name {
			t.Errorf("volume %s names ConfigMap %s, not %s", v.Name, v.ConfigMap.Name, cm.Name)
		}
	}
	if int64(cfg.DrainTimeout.Seconds()) >= *pod.Spec.TerminationGracePeriodSeconds {
		t.Errorf("drain_timeout %s is not below terminationGracePeriodSeconds", cfg.DrainTimeout)
	}

	matches := func(sel map[string]string) bool {
		for k, v := range sel {
			if pod.Labels[k] != v {
				return false
			}
		}
		return len(sel) > 0
	}
	svc := one[*corev1.Service](t, objs, "service.yaml")
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 22 ||
		ports[svc.Spec.Ports[0].TargetPort.String()] != 2222 || !matches(svc.Spec.Selector) {
		t.Errorf("service: %+v", svc.Spec)
	}
	pdb := one[*policyv1.PodDisruptionBudget](t, objs, "pdb.yaml")
	if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 2 || !matches(pdb.Spec.Selector.MatchLabels) {
		t.Errorf("pdb: %+v", pdb.Spec)
	}
}

func TestExamplesSystemd(t *testing.T) {
	dir := filepath.Join("..", "..", "examples", "systemd")
	unit, err := os.ReadFile(filepath.Join(dir, "bastion.service"))
	if err != nil {
		t.Fatal(err)
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(string(unit), "\n") {
		lines[strings.TrimSpace(l)] = true
	}
	for _, want := range []string{"[Service]", "NoNewPrivileges=yes", "ProtectSystem=strict", "ReadWritePaths=/var/lib/bastion",
		"StateDirectory=bastion", "EnvironmentFile=-/etc/bastion/bastion.env", "CapabilityBoundingSet=",
		"ExecStart=/usr/local/bin/bastion serve --config /etc/bastion/config.yaml"} {
		if !lines[want] {
			t.Errorf("bastion.service lacks %q", want)
		}
	}
	env, err := os.ReadFile(filepath.Join(dir, "bastion.env"))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, l := range strings.Split(string(env), "\n") {
		if v, ok := strings.CutPrefix(l, "BASTION_STORE="); ok {
			var c Config
			if err := c.applyStoreEnv(v); err != nil || c.Store.Backend != "etcd" || len(c.Store.Etcd.Endpoints) != 3 {
				t.Errorf("bastion.env BASTION_STORE=%s: %v %+v", v, err, c.Store)
			}
			found = true
		}
	}
	if !found {
		t.Error("bastion.env sets no BASTION_STORE")
	}
}

package test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// There is no cluster here. The manifests are decoded strictly into the
// Kubernetes API types, which catches a misspelt or misplaced field as the
// API server would, and checked for the references between them; the
// Corefiles they carry run in a real CoreDNS against a real etcd.

// manifests is every object of deploy/kubernetes, by "Kind/namespace/name".
type manifests map[string]any

func loadManifests(t *testing.T) manifests {
	t.Helper()
	files, err := filepath.Glob("../deploy/kubernetes/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in deploy/kubernetes (%v)", err)
	}
	objects := manifests{}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range strings.Split(string(data), "\n---\n") {
			var meta struct{ Kind string }
			if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
				t.Fatalf("%s, document %d: %v", file, i+1, err)
			}
			var obj interface {
				GetName() string
				GetNamespace() string
			}
			switch meta.Kind {
			case "Namespace":
				obj = &corev1.Namespace{}
			case "Service":
				obj = &corev1.Service{}
			case "ConfigMap":
				obj = &corev1.ConfigMap{}
			case "StatefulSet":
				obj = &appsv1.StatefulSet{}
			case "Deployment":
				obj = &appsv1.Deployment{}
			case "PodDisruptionBudget":
				obj = &policyv1.PodDisruptionBudget{}
			case "NetworkPolicy":
				obj = &networkingv1.NetworkPolicy{}
			default:
				t.Fatalf("%s, document %d: kind %q: the test knows no such kind", file, i+1, meta.Kind)
			}
			if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
				t.Errorf("%s, document %d (%s): %v", file, i+1, meta.Kind, err)
				continue
			}
			key := meta.Kind + "/" + obj.GetNamespace() + "/" + obj.GetName()
			if _, dup := objects[key]; dup {
				t.Errorf("%s: %s twice", file, key)
			}
			objects[key] = obj
		}
	}
	return objects
}

func TestKubernetesManifests(t *testing.T) {
	objects := loadManifests(t)
	var pods []map[string]string // the labels of every pod template
	for key, obj := range objects {
		var spec corev1.PodTemplateSpec
		switch o := obj.(type) {
		case *appsv1.StatefulSet:
			spec = o.Spec.Template
			if svc, ok := objects["Service/"+o.Namespace+"/"+o.Spec.ServiceName].(*corev1.Service); !ok || svc.Spec.ClusterIP != corev1.ClusterIPNone {
				t.Errorf("%s: serviceName %q is not a headless Service of the manifests", key, o.Spec.ServiceName)
			}
			checkSelector(t, key, o.Spec.Selector.MatchLabels, spec.Labels)
		case *appsv1.Deployment:
			spec = o.Spec.Template
			checkSelector(t, key, o.Spec.Selector.MatchLabels, spec.Labels)
		default:
			continue
		}
		pods = append(pods, spec.Labels)
		if ns := spec.Namespace; ns != "" {
			t.Errorf("%s: the pod template has a namespace", key)
		}
		namespace := strings.Split(key, "/")[1]
		if _, ok := objects["Namespace//"+namespace]; !ok {
			t.Errorf("%s: namespace %q is not in the manifests", key, namespace)
		}
		for _, v := range spec.Spec.Volumes {
			if cm := v.ConfigMap; cm != nil {
				if _, ok := objects["ConfigMap/"+namespace+"/"+cm.Name]; !ok {
					t.Errorf("%s: volume %s: ConfigMap %q is not in the manifests", key, v.Name, cm.Name)
				}
			}
		}
		for _, c := range spec.Spec.Containers {
			if c.ReadinessProbe == nil || c.LivenessProbe == nil {
				t.Errorf("%s: container %s has no readiness or liveness probe", key, c.Name)
			}
			sc := c.SecurityContext
			if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
				sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
				t.Errorf("%s: container %s may escalate, write its root or keep capabilities", key, c.Name)
			}
		}
		if psc := spec.Spec.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
			t.Errorf("%s: its pods may run as root", key)
		}
	}
	// Every Service, disruption budget and network policy selects some pods
	// of the manifests.
	for key, obj := range objects {
		var selector map[string]string
		switch o := obj.(type) {
		case *corev1.Service:
			selector = o.Spec.Selector
		case *policyv1.PodDisruptionBudget:
			selector = o.Spec.Selector.MatchLabels
		case *networkingv1.NetworkPolicy:
			selector = o.Spec.PodSelector.MatchLabels
		default:
			continue
		}
		if !slices.ContainsFunc(pods, func(l map[string]string) bool { return labels.SelectorFromSet(selector).Matches(labels.Set(l)) }) {
			t.Errorf("%s: selector %v matches no pod of the manifests", key, selector)
		}
	}

	// The Deployment's probes and ports are those of its Corefile.
	deploy := objects["Deployment/bluegreen/bluegreen"].(*appsv1.Deployment)
	c := deploy.Spec.Template.Spec.Containers[0]
	corefile := objects["ConfigMap/bluegreen/bluegreen-corefile"].(*corev1.ConfigMap).Data["Corefile"]
	if c.ReadinessProbe.HTTPGet.Path != "/ready" || c.ReadinessProbe.HTTPGet.Port.IntValue() != 8181 || !strings.Contains(corefile, "\n    ready\n") {
		t.Errorf("readiness probe %v, want /ready on 8181, ready's default port", c.ReadinessProbe.HTTPGet)
	}
	if c.LivenessProbe.HTTPGet.Path != "/health" || c.LivenessProbe.HTTPGet.Port.IntValue() != 8080 || !strings.Contains(corefile, "\n    health {") {
		t.Errorf("liveness probe %v, want /health on 8080, health's default port", c.LivenessProbe.HTTPGet)
	}
	if !strings.Contains(corefile, "prometheus :9153") || !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.ContainerPort == 9153 }) {
		t.Errorf("the metrics port is not 9153 in both the Corefile and the container")
	}
	if *deploy.Spec.Replicas != 2 {
		t.Errorf("%d CoreDNS replicas, want 2", *deploy.Spec.Replicas)
	}
	if sts := objects["StatefulSet/bluegreen/etcd"].(*appsv1.StatefulSet); *sts.Spec.Replicas != 3 {
		t.Errorf("%d etcd members, want 3", *sts.Spec.Replicas)
	}
}

func checkSelector(t *testing.T, key string, selector, podLabels map[string]string) {
	t.Helper()
	if len(selector) == 0 || !labels.SelectorFromSet(selector).Matches(labels.Set(podLabels)) {
		t.Errorf("%s: selector %v does not match its pods' labels %v", key, selector, podLabels)
	}
}

// adapt makes a Corefile written for a cluster run here: each old string
// (which must be in it) is replaced by its new one. What the tests change
// is only where things are: etcd's address, and ports and upstreams that
// belong to a cluster.
func adapt(t *testing.T, corefile string, oldnew ...string) string {
	t.Helper()
	for i := 0; i < len(oldnew); i += 2 {
		if !strings.Contains(corefile, oldnew[i]) {
			t.Fatalf("the Corefile no longer has %q:\n%s", oldnew[i], corefile)
		}
		corefile = strings.ReplaceAll(corefile, oldnew[i], oldnew[i+1])
	}
	return corefile
}

// TestKubernetesCorefile runs the Corefile of 20-coredns.yaml's ConfigMap with
// etcd's endpoint changed, and its ports: DNS on a free port, health and
// ready on loopback addresses the test reads, the metrics port on a free
// one; forward goes to a loopback address where nothing answers, in place
// of the pod's resolver.
func TestKubernetesCorefile(t *testing.T) {
	objects := loadManifests(t)
	etcd := startEtcd(t)
	etcd.putName(t, "app.example.org", "blue", "10.0.1.100", "10.0.2.100")
	health, ready, metrics := "127.0.0.1:"+freePort(t), "127.0.0.1:"+freePort(t), "127.0.0.1:"+freePort(t)
	corefile := adapt(t, objects["ConfigMap/bluegreen/bluegreen-corefile"].(*corev1.ConfigMap).Data["Corefile"],
		"http://etcd-client.bluegreen.svc.cluster.local:2379", etcd.endpoint,
		"example.org:53 {", "example.org:0 {",
		".:53 {", ".:0 {",
		"health {", "health "+health+" {",
		"\n    ready\n", "\n    ready "+ready+"\n",
		"prometheus :9153", "prometheus "+metrics,
		"/var/lib/bluegreen/snapshot", filepath.Join(t.TempDir(), "snapshot"),
		"forward . /etc/resolv.conf", "forward . 127.0.0.1:"+freePort(t),
	)
	_, udp, _ := startCoreDNS(t, corefile)

	for _, probe := range []string{"http://" + ready + "/ready", "http://" + health + "/health"} {
		waitFor(t, probe+" answering 200", 10*time.Second, func() bool { return getStatus(probe) == http.StatusOK })
	}
	if got := answers(query(t, "udp", udp, "app.example.org", dns.TypeA)); !slices.Equal(got, []string{"A 10.0.1.100"}) {
		t.Errorf("app.example.org: %v, want blue's A 10.0.1.100", got)
	}
	etcd.put(t, "/bluegreen/app.example.org/active", "green")
	waitFor(t, "the flip answered", 5*time.Second, func() bool {
		return slices.Equal(answers(query(t, "udp", udp, "app.example.org", dns.TypeA)), []string{"A 10.0.2.100"})
	})
	// The managed zone is answered here alone: a name etcd does not hold is
	// NXDOMAIN, never forwarded (the cluster's DNS would send it back).
	if m := query(t, "udp", udp, "other.example.org", dns.TypeA); m.Rcode != dns.RcodeNameError || !m.Authoritative {
		t.Errorf("other.example.org: %s, authoritative %v; want an authoritative NXDOMAIN", dns.RcodeToString[m.Rcode], m.Authoritative)
	}
}

// getStatus is the HTTP status of a GET of url, 0 if it fails.
func getStatus(url string) int {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestKubernetesClusterStanza runs the guide's worked example: the cluster's
// Corefile with the bluegreen stanza, and the guide's bgctl commands. hosts
// stands in for the kubernetes plugin, answering the Services app-blue and
// app-green; the guide's address of etcd-client is the test's etcd.
func TestKubernetesClusterStanza(t *testing.T) {
	guide := markdownSection(t, "../deploy/kubernetes/README.md", "### Worked example: app.shop.svc.cluster.local")
	guideCorefile, _, _ := strings.Cut(strings.SplitN(guide, "~~~ txt\n", 2)[1], "~~~")
	kubernetes := "    kubernetes cluster.local in-addr.arpa ip6.arpa {\n        pods insecure\n        fallthrough in-addr.arpa ip6.arpa\n        ttl 30\n    }\n"
	cluster := func(endpoint string) (corefile, ready string) {
		ready = "127.0.0.1:" + freePort(t)
		return adapt(t, guideCorefile,
			"http://10.96.0.50:2379", endpoint,
			".:53 {", ".:0 {",
			kubernetes, "    hosts {\n        10.96.1.10 app-blue.shop.svc.cluster.local\n        10.96.2.10 app-green.shop.svc.cluster.local\n        10.96.9.9 app.shop.svc.cluster.local\n    }\n",
			"health {", "health 127.0.0.1:"+freePort(t)+" {",
			"\n    ready\n", "\n    ready "+ready+"\n",
			"prometheus :9153", "prometheus 127.0.0.1:"+freePort(t),
			"forward . /etc/resolv.conf", "forward . 127.0.0.1:"+freePort(t),
		), ready
	}

	// With etcd out of reach, the cluster's DNS is ready all the same, and
	// the managed name goes on to the plugin after it (which stands for
	// kubernetes, and knows a Service app here, so that the test sees it).
	down, downReady := cluster("http://127.0.0.1:" + freePort(t))
	_, downUDP, _ := startCoreDNS(t, down)
	if code := getStatus("http://" + downReady + "/ready"); code != http.StatusOK {
		t.Errorf("/ready with etcd out of reach: %d, want 200 (ready off)", code)
	}
	if got := answers(query(t, "udp", downUDP, "app.shop.svc.cluster.local", dns.TypeA)); !slices.Equal(got, []string{"A 10.96.9.9"}) {
		t.Errorf("app.shop.svc.cluster.local with etcd out of reach: %v, want the next plugin's answer", got)
	}

	etcd := startEtcd(t)
	corefile, _ := cluster(etcd.endpoint)
	_, udp, _ := startCoreDNS(t, corefile)

	var commands [][]string
	for _, line := range strings.Split(guide, "\n") {
		if strings.HasPrefix(line, "bgctl ") {
			commands = append(commands, shellWords(t, strings.TrimPrefix(line, "bgctl ")))
		}
	}
	if len(commands) != 3 {
		t.Fatalf("the guide's example has %d bgctl commands, want set, switch and confirm", len(commands))
	}
	app := func() []string { return answers(query(t, "udp", udp, "app.shop.svc.cluster.local", dns.TypeA)) }
	want := func(colour, address string) []string {
		return []string{"A " + address, fmt.Sprintf("CNAME app-%s.shop.svc.cluster.local.", colour)}
	}
	for i, args := range commands {
		if r := bgctl(t, etcd.endpoint, args...); r.code != 0 {
			t.Fatalf("bgctl %s: %s", strings.Join(args, " "), r)
		}
		if i == 0 {
			waitFor(t, "app-blue answered", 5*time.Second, func() bool { return slices.Equal(app(), want("blue", "10.96.1.10")) })
		}
	}
	if got := app(); !slices.Equal(got, want("green", "10.96.2.10")) {
		t.Errorf("after the switch: %v, want %v", got, want("green", "10.96.2.10"))
	}
	if got := answers(query(t, "udp", udp, "app-blue.shop.svc.cluster.local", dns.TypeA)); !slices.Equal(got, []string{"A 10.96.1.10"}) {
		t.Errorf("app-blue.shop.svc.cluster.local, handed on: %v, want the Service's address", got)
	}
}

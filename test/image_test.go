package test

import (
	"archive/tar"
	"bytes"
	"crypto/x509"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestImage builds the container image with make image and checks it from
// its own filesystem, exported: running a container fails in this sandbox
// (crun cannot set its rlimits, then refuses the hybrid cgroup layout), so
// the binaries taken out of the image are run here instead. They are
// static, so they run the same anywhere.
func TestImage(t *testing.T) {
	tool := containerTool(t)
	if os.Getuid() != 0 {
		t.Skip("make image sets a file capability with setcap, which needs root")
	}
	image := fmt.Sprintf("localhost/bluegreen:test-%d", os.Getpid())
	run(t, 10*time.Minute, "make", "-C", "..", "image", "IMAGE="+image, "CONTAINER="+tool)
	t.Cleanup(func() { exec.Command(tool, "rmi", "-f", image).Run() })

	if user := strings.TrimSpace(run(t, time.Minute, tool, "image", "inspect", "--format", "{{.Config.User}}", image)); !nonRoot(user) {
		t.Errorf("the image runs as user %q, want a numeric uid:gid other than 0", user)
	}
	if ep := strings.TrimSpace(run(t, time.Minute, tool, "image", "inspect", "--format", "{{json .Config.Entrypoint}}", image)); ep != `["/coredns"]` {
		t.Errorf("entrypoint %s, want [\"/coredns\"]", ep)
	}

	container := strings.TrimSpace(run(t, time.Minute, tool, "create", image))
	t.Cleanup(func() { exec.Command(tool, "rm", "-f", container).Run() })
	// Not t.TempDir, whose parent only root may enter: the image's user
	// runs /coredns from here below.
	dir, err := os.MkdirTemp("", "image")
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	files := exportImage(t, tool, container, dir)
	want := []string{"bgctl", "coredns", "etc/group", "etc/passwd", "etc/ssl/certs/ca-certificates.crt"}
	if !slices.Equal(files, want) {
		t.Errorf("files in the image: %v, want exactly %v", files, want)
	}

	for _, bin := range []string{"coredns", "bgctl"} {
		if libs := dynamic(t, filepath.Join(dir, bin)); libs != "" {
			t.Errorf("/%s is not static: %s", bin, libs)
		}
	}
	if out := run(t, time.Minute, filepath.Join(dir, "coredns"), "-plugins"); !slices.Contains(strings.Fields(out), "bluegreen") {
		t.Errorf("/coredns -plugins does not list bluegreen:\n%s", out)
	}
	if out := run(t, time.Minute, filepath.Join(dir, "bgctl"), "--help"); !strings.Contains(out, "release ") {
		t.Errorf("/bgctl --help:\n%s", out)
	}
	pem, err := os.ReadFile(filepath.Join(dir, "etc/ssl/certs/ca-certificates.crt"))
	if err != nil || !x509.NewCertPool().AppendCertsFromPEM(pem) {
		t.Errorf("/etc/ssl/certs/ca-certificates.crt holds no certificate (%v)", err)
	}
	if passwd, _ := os.ReadFile(filepath.Join(dir, "etc/passwd")); !strings.Contains(string(passwd), ":65532:65532:") {
		t.Errorf("/etc/passwd does not name the image's user:\n%s", passwd)
	}

	// The image's user binds port 53 with the capability the image gives
	// /coredns, as it must when it replaces a cluster's CoreDNS.
	conf := filepath.Join(dir, "Corefile")
	if err := os.WriteFile(conf, []byte(".:53 {\n\tbind 127.0.83.53\n\twhoami\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(dir, "coredns"), "-conf", conf)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65532, Gid: 65532}}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	start := time.Now()
	for {
		if r, err := exchange("udp", "127.0.83.53:53", "example.org", dns.TypeA); err == nil && r.Rcode == dns.RcodeSuccess {
			break
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("/coredns as uid 65532 on port 53 exited: %v\n%s", err, out.String())
		default:
		}
		if time.Since(start) > 20*time.Second {
			t.Fatalf("/coredns as uid 65532 on port 53: no answer within 20s\n%s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// containerTool is podman or docker, as make image picks it.
func containerTool(t *testing.T) string {
	for _, tool := range []string{"podman", "docker"} {
		if path, err := exec.LookPath(tool); err == nil {
			if tool == "docker" && exec.Command(path, "info").Run() != nil {
				continue // the client without an engine
			}
			return path
		}
	}
	t.Skip("neither podman nor docker (with an engine) is installed; .ci/run installs podman")
	return ""
}

// run runs a command and returns its output, failing the test if it fails
// or outlives limit.
func run(t *testing.T, limit time.Duration, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	timer := time.AfterFunc(limit, func() { cmd.Process.Kill() })
	defer timer.Stop()
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

func nonRoot(user string) bool {
	uid, gid, ok := strings.Cut(user, ":")
	u, err1 := strconv.Atoi(uid)
	_, err2 := strconv.Atoi(gid)
	return ok && err1 == nil && err2 == nil && u != 0
}

// exportImage writes the regular files of container's filesystem into dir,
// with their modes and their security.capability attribute, and returns
// their paths.
func exportImage(t *testing.T, tool, container, dir string) []string {
	t.Helper()
	cmd := exec.Command(tool, "export", container)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var files []string
	tr := tar.NewReader(stdout)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s export: %v", tool, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name := strings.TrimPrefix(h.Name, "/")
		files = append(files, name)
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, os.FileMode(h.Mode).Perm())
		if err == nil {
			_, err = io.Copy(f, tr)
			f.Close()
		}
		if err != nil {
			t.Fatal(err)
		}
		if c, ok := h.PAXRecords["SCHILY.xattr.security.capability"]; ok {
			if err := syscall.Setxattr(path, "security.capability", []byte(c), 0); err != nil {
				t.Fatalf("%s: setting its capability: %v", name, err)
			}
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%s export: %v", tool, err)
	}
	slices.Sort(files)
	return files
}

// dynamic says what makes an ELF file depend on a loader or shared
// libraries, or "" when nothing does.
func dynamic(t *testing.T, path string) string {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return "it has a program interpreter"
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		return "it needs " + strings.Join(libs, ", ")
	}
	return ""
}

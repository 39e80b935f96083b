package env

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"

	"github.com/poolproof/poolproof/docker"
	"github.com/poolproof/poolproof/internal/bounded"
)

// poolproofPackage is what `go build` builds for the images; by import path
// so that it builds from any module that requires poolproof, not only from
// a checkout.
const poolproofPackage = "github.com/poolproof/poolproof/cmd/poolproof"

var loopbackV4 = netip.MustParseAddr("127.0.0.1")

// dockerHealthTimeout bounds the first question to the daemon, so that a
// missing or hung daemon is reported quickly.
const dockerHealthTimeout = 10 * time.Second

type dockerImages struct{ fakeserver, toxiproxy string }

// imageCache remembers, per binary source ("" = built from source), the
// images built in this process, so that a test process builds once.
var imageCache = struct {
	sync.Mutex
	built map[string]dockerImages
}{built: map[string]dockerImages{}}

// dockerHealth asks the daemon for its info, bounded in time.
func dockerHealth(ctx context.Context) error {
	// NewDockerProvider takes no context: only its own goroutine can be
	// abandoned when the daemon does not answer.
	err, abandoned := bounded.Call(ctx, dockerHealthTimeout, 0, func(ctx context.Context) error {
		p, err := testcontainers.NewDockerProvider(testcontainers.WithLogger(tcLogger(io.Discard)))
		if err == nil {
			err = p.Health(ctx)
		}
		return err
	})
	switch {
	case abandoned:
		return fmt.Errorf("%w: no answer from the daemon within %v: %w", ErrDockerUnavailable, dockerHealthTimeout, err)
	case err != nil:
		return fmt.Errorf("%w: %w (start Docker, or set DOCKER_HOST to a daemon this user may use)", ErrDockerUnavailable, err)
	}
	return nil
}

// buildImages builds (or finds) the fake service and Toxiproxy images for
// the configured binary. Images are tagged by the binary's content hash and
// kept, so a second run of the same binary, in this process or another,
// builds nothing.
func buildImages(ctx context.Context, cfg config) (dockerImages, error) {
	imageCache.Lock()
	defer imageCache.Unlock()
	if imgs, ok := imageCache.built[cfg.binary]; ok && imagesExist(ctx, imgs) {
		return withToxiproxyImage(imgs, cfg), nil
	}

	dir, err := os.MkdirTemp("", "poolproof-docker-build-")
	if err != nil {
		return dockerImages{}, fmt.Errorf("creating the build context: %w", err)
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "poolproof")
	if cfg.binary == "" {
		if err := goBuild(ctx, bin); err != nil {
			return dockerImages{}, err
		}
	} else if err := copyFile(cfg.binary, bin); err != nil {
		return dockerImages{}, fmt.Errorf("WithPoolproofBinary(%q): %w", cfg.binary, err)
	}
	sum, err := fileHash(bin)
	if err != nil {
		return dockerImages{}, err
	}
	for name, body := range map[string][]byte{
		"fakeserver.Dockerfile": docker.FakeserverDockerfile,
		"toxiproxy.Dockerfile":  docker.ToxiproxyDockerfile,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
			return dockerImages{}, fmt.Errorf("writing %s into the build context: %w", name, err)
		}
	}

	imgs := dockerImages{}
	for _, b := range []struct {
		dockerfile, repo string
		out              *string
	}{
		{"fakeserver.Dockerfile", "poolproof/fakeserver", &imgs.fakeserver},
		{"toxiproxy.Dockerfile", "poolproof/toxiproxy", &imgs.toxiproxy},
	} {
		tag := b.repo + ":" + sum
		*b.out = tag
		if imageExists(ctx, tag) {
			continue
		}
		if err := buildImage(ctx, cfg.log, dir, b.dockerfile, b.repo, sum); err != nil {
			return dockerImages{}, err
		}
	}
	imageCache.built[cfg.binary] = imgs
	pruneImages(ctx, sum)
	return withToxiproxyImage(imgs, cfg), nil
}

func withToxiproxyImage(imgs dockerImages, cfg config) dockerImages {
	if cfg.toxiproxyImage != "" {
		imgs.toxiproxy = cfg.toxiproxyImage
	}
	return imgs
}

// goBuild builds the static linux poolproof binary at out, bounded by ctx.
func goBuild(ctx context.Context, out string) error {
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	cmd := exec.CommandContext(ctx, goTool, "build", "-trimpath", "-o", out, poolproofPackage)
	// The images are FROM scratch: no libc, so no cgo; the daemon is assumed
	// to run this machine's architecture.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	cmd.WaitDelay = 5 * time.Second
	outText, err := cmd.CombinedOutput()
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("go build %s: stopped: %w", poolproofPackage, ctxErr)
		}
		return fmt.Errorf("go build %s (run from a module that requires it, or give a prebuilt static binary with WithPoolproofBinary): %w: %s",
			poolproofPackage, err, strings.TrimSpace(string(outText)))
	}
	return nil
}

func buildImage(ctx context.Context, log io.Writer, dir, dockerfile, repo, tag string) error {
	p, err := testcontainers.NewDockerProvider(testcontainers.WithLogger(tcLogger(log)))
	if err != nil {
		return fmt.Errorf("building %s:%s: %w", repo, tag, err)
	}
	defer p.Close()
	req := &testcontainers.ContainerRequest{FromDockerfile: testcontainers.FromDockerfile{
		Context:        dir,
		Dockerfile:     dockerfile,
		Repo:           repo,
		Tag:            tag,
		KeepImage:      true,
		BuildLogWriter: log,
		BuildOptionsModifier: func(o *client.ImageBuildOptions) {
			o.Labels = map[string]string{imageLabel: tag}
		},
	}}
	if _, err := p.BuildImage(ctx, req); err != nil {
		return fmt.Errorf("building %s:%s from docker/%s: %w", repo, tag, dockerfile, err)
	}
	return nil
}

// imageLabel marks the images NewDocker builds, with the binary's hash.
const imageLabel = "poolproof.image"

// imageKeep is how long an image built for another binary is kept: long
// enough that another process still starting containers from it (tests of
// another checkout, run at the same time) is not disturbed.
const imageKeep = time.Hour

// pruneImages removes the images built for other binaries more than
// imageKeep ago, so that a day of edits does not pile up images. It never
// forces: Docker refuses to remove an image a container uses. It is best
// effort and bounded by ctx; failures are ignored.
func pruneImages(ctx context.Context, keep string) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_ = withDockerClient(ctx, func(c *testcontainers.DockerClient) error {
		list, err := c.ImageList(ctx, client.ImageListOptions{Filters: make(client.Filters).Add("label", imageLabel)})
		if err != nil {
			return err
		}
		cutoff := time.Now().Add(-imageKeep).Unix()
		for _, img := range list.Items {
			if img.Labels[imageLabel] == keep || img.Created > cutoff {
				continue
			}
			for _, ref := range img.RepoTags {
				_, _ = c.ImageRemove(ctx, ref, client.ImageRemoveOptions{})
			}
		}
		return nil
	})
}

func imagesExist(ctx context.Context, imgs dockerImages) bool {
	return imageExists(ctx, imgs.fakeserver) && imageExists(ctx, imgs.toxiproxy)
}

func imageExists(ctx context.Context, ref string) bool {
	var found bool
	_ = withDockerClient(ctx, func(c *testcontainers.DockerClient) error {
		_, err := c.ImageInspect(ctx, ref)
		found = err == nil
		return nil
	})
	return found
}

func withDockerClient(ctx context.Context, fn func(*testcontainers.DockerClient) error) error {
	c, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return fmt.Errorf("docker client: %w", err)
	}
	defer c.Close()
	return fn(c)
}

// removeLabeled force-removes every container, then every network, labelled
// DockerLabel=runID. It lists twice, a moment apart, because a container
// whose creation request was cut short by a canceled context may still be
// created by the daemon just after.
func removeLabeled(ctx context.Context, runID string) error {
	filter := make(client.Filters).Add("label", DockerLabel+"="+runID)
	return withDockerClient(ctx, func(c *testcontainers.DockerClient) error {
		var errs []error
		for round := range 2 {
			if round > 0 {
				select {
				case <-time.After(300 * time.Millisecond):
				case <-ctx.Done():
					return errors.Join(append(errs, ctx.Err())...)
				}
			}
			errs = errs[:0]
			cs, err := c.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: filter})
			if err != nil {
				errs = append(errs, fmt.Errorf("listing containers labelled %s=%s: %w", DockerLabel, runID, err))
			}
			for _, ctr := range cs.Items {
				if _, err := c.ContainerRemove(ctx, ctr.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !isNotFound(err) {
					errs = append(errs, fmt.Errorf("removing container %s: %w", ctr.ID[:12], err))
				}
			}
			ns, err := c.NetworkList(ctx, client.NetworkListOptions{Filters: filter})
			if err != nil {
				errs = append(errs, fmt.Errorf("listing networks labelled %s=%s: %w", DockerLabel, runID, err))
			}
			for _, n := range ns.Items {
				if _, err := c.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil && !isNotFound(err) {
					errs = append(errs, fmt.Errorf("removing network %s: %w", n.Name, err))
				}
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("docker environment %s: cleanup left something behind (find it with `docker ps -a --filter label=%s`): %w", runID, DockerLabel, errors.Join(errs...))
		}
		return nil
	})
}

func isNotFound(err error) bool { return cerrdefs.IsNotFound(err) }

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// fileHash is the first 12 hex digits of the file's SHA-256.
func fileHash(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hashing %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}

// newRunID names one environment's containers and networks: the process
// and the start time, readable in `docker ps` and unique on one host.
func newRunID() string {
	return strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
}

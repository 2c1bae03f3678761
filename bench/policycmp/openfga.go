package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	openfgav1 "github.com/openfga/api/proto/openfga/v1"
	"github.com/openfga/language/pkg/go/transformer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/sshbastion/bastion/policy"
	"github.com/sshbastion/bastion/store"
)

// ofgaOptions configures the OpenFGA side.
type ofgaOptions struct {
	datastore   string   // memory or sqlite
	extra       []string // more flags for `openfga run`
	workers     int      // concurrent write requests while loading
	batch       int      // tuples per write request
	loadTimeout time.Duration
}

// ofga is a running `openfga run` child process and a gRPC client to it.
type ofga struct {
	cmd     *exec.Cmd
	done    chan struct{}
	logPath string
	conn    *grpc.ClientConn
	c       openfgav1.OpenFGAServiceClient
	store   string
	model   string
}

// runOpenFGA starts OpenFGA, loads the data set and measures it. A failure
// is reported in the note of the result rather than failing the run.
func runOpenFGA(ctx context.Context, bin, dir string, d policy.BenchData, want []bool, dur time.Duration, lists int, oo ofgaOptions) results {
	r := results{}
	s, err := startOpenFGA(ctx, bin, dir, oo)
	if err != nil {
		r.note = err.Error()
		return r
	}
	defer s.stop()
	if err := s.setup(ctx, d.Model); err != nil {
		r.note = s.withLog(err)
		return r
	}
	t0 := time.Now()
	if err := s.load(ctx, d.Tuples, oo); err != nil {
		r.note = s.withLog(fmt.Errorf("loading %d tuples: %w (after %v)", len(d.Tuples), err, time.Since(t0).Round(time.Second)))
		return r
	}
	r.load = time.Since(t0)
	logf("openfga: loaded %d tuples in %v", len(d.Tuples), r.load.Round(time.Millisecond))
	check := func(ctx context.Context, q policy.CheckQuery) (bool, error) {
		res, err := s.c.Check(ctx, &openfgav1.CheckRequest{StoreId: s.store, AuthorizationModelId: s.model,
			TupleKey: &openfgav1.CheckRequestTupleKey{User: q.Subject, Relation: q.Relation, Object: q.Object}})
		return res.GetAllowed(), err
	}
	list := func(ctx context.Context) ([]string, error) {
		res, err := s.c.ListObjects(ctx, &openfgav1.ListObjectsRequest{StoreId: s.store, AuthorizationModelId: s.model,
			Type: "resource", Relation: "view", User: d.ListSubject})
		return res.GetObjects(), err
	}
	// Warm up as the bastion was (one pass over the questions), bounded.
	warm := time.Now()
	for i := 0; i < len(d.Checks) && time.Since(warm) < dur; i++ {
		_, _ = check(ctx, d.Checks[i])
	}
	measure(ctx, "openfga", &r, d, want, check, list, dur, lists)
	return r
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startOpenFGA(ctx context.Context, bin, dir string, oo ofgaOptions) (*ofga, error) {
	grpcPort, err := freePort()
	if err != nil {
		return nil, err
	}
	args := []string{"run",
		"--grpc-addr", "127.0.0.1:" + strconv.Itoa(grpcPort),
		"--http-enabled=false", "--playground-enabled=false", "--metrics-enabled=false",
		"--profiler-enabled=false", "--authn-method", "none", "--log-level", "warn",
		"--max-tuples-per-write", strconv.Itoa(max(oo.batch, 100)),
		// Return the whole answer (its default stops at 1000 objects, and
		// the subject reaches about 1000) and let slow calls finish.
		"--listObjects-max-results", "0", "--listObjects-deadline", "60s", "--request-timeout", "60s",
	}
	switch oo.datastore {
	case "memory":
		args = append(args, "--datastore-engine", "memory")
	case "sqlite":
		uri := "file:" + filepath.Join(dir, "openfga.db")
		mig := exec.CommandContext(ctx, bin, "migrate", "--datastore-engine", "sqlite", "--datastore-uri", uri)
		if out, err := mig.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("openfga migrate: %v: %s", err, out)
		}
		args = append(args, "--datastore-engine", "sqlite", "--datastore-uri", uri)
	default:
		return nil, fmt.Errorf("unknown -openfga-datastore %q", oo.datastore)
	}
	args = append(args, oo.extra...)
	s := &ofga{done: make(chan struct{}), logPath: filepath.Join(dir, "openfga.log")}
	logFile, err := os.Create(s.logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own copy
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start openfga: %w", err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	logf("openfga: started pid %d on 127.0.0.1:%d (gRPC only), %s datastore", s.cmd.Process.Pid, grpcPort, oo.datastore)
	s.conn, err = grpc.NewClient("127.0.0.1:"+strconv.Itoa(grpcPort), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		s.stop()
		return nil, err
	}
	s.c = openfgav1.NewOpenFGAServiceClient(s.conn)
	// Wait (at most a minute) until it answers.
	for i := 0; ; i++ {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := s.c.ListStores(cctx, &openfgav1.ListStoresRequest{})
		cancel()
		if err == nil {
			return s, nil
		}
		select {
		case <-s.done:
			err = s.withLogErr(errors.New("openfga exited early"))
			s.stop()
			return nil, err
		case <-time.After(250 * time.Millisecond):
		}
		if i >= 240 {
			err = s.withLogErr(fmt.Errorf("openfga not ready after a minute: %w", err))
			s.stop()
			return nil, err
		}
	}
}

// stop ends the child: SIGTERM, then SIGKILL after 10 s.
func (s *ofga) stop() {
	if s.conn != nil {
		_ = s.conn.Close()
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// withLog appends the tail of OpenFGA's log to err's text.
func (s *ofga) withLog(err error) string { return s.withLogErr(err).Error() }

func (s *ofga) withLogErr(err error) error {
	b, _ := os.ReadFile(s.logPath)
	var keep []string
	for _, line := range strings.Split(ansi.ReplaceAllString(string(b), ""), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.Contains(line, "WARN") {
			keep = append(keep, line)
		}
	}
	if len(keep) == 0 {
		return err
	}
	var errs []string
	for _, line := range keep {
		if errLine.MatchString(line) {
			errs = append(errs, line)
		}
	}
	if len(errs) > 0 {
		keep = errs
	}
	tail := strings.Join(keep[max(0, len(keep)-3):], " / ")
	if len(tail) > 600 {
		tail = tail[len(tail)-600:]
	}
	return fmt.Errorf("%w; openfga log: %s", err, tail)
}

var (
	ansi    = regexp.MustCompile("\x1b\\[[0-9;]*m") // terminal colour codes
	errLine = regexp.MustCompile(`^(Error|panic|fatal error):|ERROR|FATAL|PANIC`)
)

// setup creates a store and writes the model, turned from the DSL into
// the API's protobuf form.
func (s *ofga) setup(ctx context.Context, dsl string) error {
	st, err := s.c.CreateStore(ctx, &openfgav1.CreateStoreRequest{Name: "policycmp"})
	if err != nil {
		return fmt.Errorf("create store: %w", err)
	}
	s.store = st.GetId()
	m, err := transformer.TransformDSLToProto(dsl)
	if err != nil {
		return fmt.Errorf("model: %w", err)
	}
	res, err := s.c.WriteAuthorizationModel(ctx, &openfgav1.WriteAuthorizationModelRequest{StoreId: s.store,
		SchemaVersion: m.GetSchemaVersion(), TypeDefinitions: m.GetTypeDefinitions(), Conditions: m.GetConditions()})
	if err != nil {
		return fmt.Errorf("write model: %w", err)
	}
	s.model = res.GetAuthorizationModelId()
	return nil
}

// load writes the tuples, with their conditions and contexts, in batches
// from a few concurrent writers, giving up after oo.loadTimeout. A failed
// write is retried a few times (SQLite may report itself busy).
func (s *ofga) load(ctx context.Context, tuples []store.Tuple, oo ofgaOptions) error {
	ctx, cancel := context.WithTimeout(ctx, oo.loadTimeout)
	defer cancel()
	batches := make(chan []*openfgav1.TupleKey)
	var done atomic.Int64
	var firstErr error
	var once sync.Once
	fail := func(err error) { once.Do(func() { firstErr = err; cancel() }) }
	var wg sync.WaitGroup
	for range max(1, oo.workers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				var err error
				for try := 0; try < 5; try++ {
					_, err = s.c.Write(ctx, &openfgav1.WriteRequest{StoreId: s.store, AuthorizationModelId: s.model,
						Writes: &openfgav1.WriteRequestWrites{TupleKeys: b}})
					if err == nil || ctx.Err() != nil {
						break
					}
					time.Sleep(time.Duration(try+1) * 50 * time.Millisecond)
				}
				if err != nil {
					fail(err)
					return
				}
				done.Add(int64(len(b)))
			}
		}()
	}
	start, lastLog := time.Now(), time.Now()
	total := len(tuples)
feed:
	for i := 0; i < total; i += oo.batch {
		b := make([]*openfgav1.TupleKey, 0, oo.batch)
		for _, t := range tuples[i:min(i+oo.batch, total)] {
			k, err := tupleKey(t)
			if err != nil {
				fail(err)
				break feed
			}
			b = append(b, k)
		}
		select {
		case batches <- b:
		case <-ctx.Done():
			break feed
		}
		if time.Since(lastLog) > 15*time.Second {
			n := done.Load()
			el := time.Since(start)
			logf("openfga: loading: %d/%d tuples after %v (%.0f tuples/s so far)", n, total, el.Round(time.Second), float64(n)/el.Seconds())
			lastLog = time.Now()
			// Give up early when even a generous projection (time growing
			// with the square of the tuples stored, as it does with the
			// memory datastore, which scans every stored tuple on each
			// write) is far past the timeout.
			if proj := el.Seconds() * math.Pow(float64(total)/float64(max(n, 1)), 2); el > time.Minute && proj > 3*oo.loadTimeout.Seconds() {
				fail(fmt.Errorf("gave up: %d of %d tuples written, the whole load projected to take ~%.1f h", n, total, proj/3600))
				break feed
			}
		}
	}
	close(batches)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %d of %d tuples written", err, done.Load(), total)
	}
	return nil
}

// tupleKey is t in the API's form, with its condition and context.
func tupleKey(t store.Tuple) (*openfgav1.TupleKey, error) {
	k := &openfgav1.TupleKey{Object: t.Object, Relation: t.Relation, User: t.Subject}
	if t.Condition != "" {
		c := &openfgav1.RelationshipCondition{Name: t.Condition}
		if len(t.Context) > 0 {
			var err error
			if c.Context, err = structpb.NewStruct(t.Context); err != nil {
				return nil, fmt.Errorf("context of %s: %w", t, err)
			}
		}
		k.Condition = c
	}
	return k, nil
}

package commands

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/sshbastion/bastion/store"
)

func newRecordings(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "recordings", Short: "List, replay and export shell recordings (asciicast v2)", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return c.Help() }}
	list := &cobra.Command{
		Use: "list", Short: "List recordings (yours; admins: everyone's)", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			user := e.p.User
			if e.isAdmin() {
				user = ""
			}
			ss, err := e.deps.Sessions.List(e.ctx, user, true)
			if err != nil {
				return err
			}
			out := []store.Session{}
			rows := [][]string{}
			for _, s := range ss {
				if s.Recording == "" {
					continue
				}
				out = append(out, s)
				dur := ""
				if !s.Closed.IsZero() {
					dur = s.Closed.Sub(s.Opened).Round(time.Second).String()
				}
				rows = append(rows, []string{s.Recording, s.User, s.Resource, s.Target, s.Opened.Format(time.RFC3339), dur, s.State})
			}
			return e.render(out, []string{"ID", "USER", "RESOURCE", "TARGET", "OPENED", "DURATION", "STATE"}, rows)
		},
	}
	var speed float64
	play := &cobra.Command{
		Use: "play ID", Short: "Replay a recording in your terminal", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if speed <= 0 {
				return fmt.Errorf("--speed must be positive")
			}
			cast, err := e.recording(args[0])
			if err != nil {
				return err
			}
			return replay(e, cast, speed)
		},
	}
	play.Flags().Float64Var(&speed, "speed", 1, "replay speed factor (2 = twice as fast)")
	export := &cobra.Command{
		Use: "export ID", Short: "Write the .cast file to stdout (asciinema plays it)", Args: cobra.ExactArgs(1),
		Example: "  ssh bastion recordings export s-0123 > session.cast && asciinema play session.cast",
		RunE: func(_ *cobra.Command, args []string) error {
			cast, err := e.recording(args[0])
			if err != nil {
				return err
			}
			_, err = e.out.Write(cast)
			return err
		},
	}
	cmd.AddCommand(list, play, export)
	return cmd
}

// recording returns a recording the caller may read: their own, or, for
// admins of the Resource it was made on (its project's admins, domain
// admins), anyone's: recordings show everything that was on someone's
// screen.
func (e *env) recording(id string) ([]byte, error) {
	s, err := e.deps.SessionRecords.GetSession(e.ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && s.Recording == "") {
		return nil, fmt.Errorf("no recording %s (see `recordings list`)", id)
	} else if err != nil {
		return nil, err
	}
	if s.User != e.p.User {
		if err := e.requireResourceAdmin("recordings of "+s.User+" on "+s.Resource, s.Resource, "read "+s.User+"'s recordings"); err != nil {
			return nil, err
		}
	}
	// Reading someone's session is itself on record before it happens.
	if err := e.record(store.Event{Action: "recording.read", Target: s.Resource, Details: map[string]string{"recording": id, "user": s.User}}); err != nil {
		return nil, fmt.Errorf("the audit log cannot record this read now: %w", err)
	}
	var buf bytes.Buffer
	if err := e.deps.Records.ReadRecording(e.ctx, s.Recording, func(c []byte) error { _, err := buf.Write(c); return err }); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// replay writes the output events with their timing, divided by speed;
// long pauses are capped at two seconds.
func replay(e *env, cast []byte, speed float64) error {
	sc := bufio.NewScanner(bytes.NewReader(cast))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	if !sc.Scan() {
		return fmt.Errorf("empty recording")
	}
	last := 0.0
	for sc.Scan() {
		var ev []json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || len(ev) != 3 {
			return fmt.Errorf("corrupt recording line %q", sc.Text())
		}
		t, _ := strconv.ParseFloat(string(ev[0]), 64)
		var code, data string
		_ = json.Unmarshal(ev[1], &code)
		_ = json.Unmarshal(ev[2], &data)
		if code != "o" {
			continue
		}
		wait := time.Duration((t - last) / speed * float64(time.Second))
		if wait > 2*time.Second {
			wait = 2 * time.Second
		}
		last = t
		select {
		case <-e.ctx.Done():
			return e.ctx.Err()
		case <-time.After(wait):
		}
		if _, err := e.out.Write([]byte(data)); err != nil {
			return err
		}
	}
	return sc.Err()
}

package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// A notification is what notify.webhook is POSTed, as JSON, at each event
// of a release: start, step, pause, resume, abort, rollback, success.
type notification struct {
	Event   string    `json:"event"`
	Names   []string  `json:"names"`
	From    string    `json:"from"`
	To      string    `json:"to"`
	Step    int       `json:"step"` // 0 before the first
	Steps   int       `json:"steps"`
	Canary  int       `json:"canary"` // the share of clients on the new colour
	Message string    `json:"message"`
	Plan    string    `json:"plan"`
	User    string    `json:"user"`
	Time    time.Time `json:"time"`
}

// notifyTimeout bounds one webhook call: a slow receiver delays the
// release no longer than this.
const notifyTimeout = 5 * time.Second

// notify POSTs the event to the plan's webhook, if any. A webhook that
// fails is warned of, and the release goes on: it is news, not a gate.
func (r *release) notify(event, message string) {
	if r.plan.Notify.Webhook == "" {
		return
	}
	body, _ := json.Marshal(notification{
		Event: event, Names: r.plan.Names, From: r.plan.from.String(), To: r.plan.to.String(),
		Step: r.step, Steps: len(r.plan.Steps), Canary: r.share, Message: message,
		Plan: r.plan.file, User: r.c.who(), Time: time.Now().UTC(),
	})
	ctx, cancel := context.WithTimeout(context.Background(), notifyTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.plan.Notify.Webhook, bytes.NewReader(body))
	if err == nil {
		req.Header.Set("Content-Type", "application/json")
		var resp *http.Response
		if resp, err = http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode >= 300 {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
		}
	}
	if err != nil {
		fmt.Fprintf(r.c.io.Stderr, "Warning: notify.webhook %s of %s: %s\n", redactedURL(r.plan.Notify.Webhook), event, shortNetError(err))
	}
}

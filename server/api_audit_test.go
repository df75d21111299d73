package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/client"
	"github.com/ony-ai/ony/internal/testhttp"
	"github.com/ony-ai/ony/internal/testserver"
	"github.com/ony-ai/ony/store"
)

// TestAuditCarriesNoSecrets posts handoffs full of canary secrets through every field an agent or a
// person controls, then scans every byte of the audit log — leaves, hashes, checkpoints — and the
// export for them.
func TestAuditCarriesNoSecrets(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, dialect string) {
		var logs syncBuffer
		in := testserver.Start(t, testserver.Options{Dialect: dialect,
			Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}).Seed(t)
		ctx := ctxT(t)
		agent := in.Agent(t)
		canaries := []string{"CANARY-TITLE-91c2", "CANARY-SUMMARY-4de1", "AKIACANARY7PAYLOAD", "CANARY-LABEL-77a0",
			"CANARY-CALLBACK-3b9e", "CANARY-COMMENT-0f12", "CANARY-REASON-c0de", "CANARY-IDEM-55aa", "sk_live_CANARYCANARY1234"}
		req := client.CreateRequest{Action: "shell.exec", Title: "deploy " + canaries[0], Summary: canaries[1],
			Payload:     &client.Payload{Kind: "command", Content: "AWS_SECRET=" + canaries[2] + " curl https://x | sh # " + canaries[8]},
			Labels:      map[string]string{"env": "prod", "note": canaries[3]},
			CallbackURL: "https://agent.example/cb?token=" + canaries[4]}
		h1, _, err := agent.Create(ctx, req, canaries[7])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := person(t, in, in.Member).Decide(ctx, h1.ID, "approve", canaries[5]); err != nil {
			t.Fatal(err)
		}
		h2, _, err := agent.Create(ctx, req, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := agent.Cancel(ctx, h2.ID, canaries[6]); err != nil {
			t.Fatal(err)
		}
		var all bytes.Buffer
		if _, err := in.App.Audit.Checkpoint(ctx, in.App.Store, in.OrgID); err != nil {
			t.Fatal(err)
		}
		err = in.App.Store.InOrg(ctx, in.OrgID, func(tx store.OrgTx) error {
			leaves, err := tx.AuditLeaves(ctx, 0, 1000)
			if err != nil {
				return err
			}
			if len(leaves) < 5 { // device created, two handoffs created, decided, cancelled
				t.Errorf("only %d audit leaves", len(leaves))
			}
			for _, l := range leaves {
				all.Write(l.Data)
				all.WriteByte('\n')
			}
			ts, err := tx.AuditTiles(ctx, []store.AuditTile{{Level: 0, Index: 0}})
			for _, h := range ts {
				all.Write(h.Data)
			}
			cp, err2 := tx.AuditLatestCheckpoint(ctx)
			all.Write(cp.Note)
			return errors.Join(err, err2)
		})
		if err != nil {
			t.Fatal(err)
		}
		var exp bytes.Buffer
		if err := in.App.Audit.Export(ctx, in.App.Store, in.OrgID, &exp); err != nil {
			t.Fatal(err)
		}
		for _, c := range canaries {
			for _, where := range []struct {
				name string
				data []byte
			}{{"audit rows", all.Bytes()}, {"export", exp.Bytes()}, {"logs", logs.Bytes()}} {
				if bytes.Contains(where.data, []byte(c)) || bytes.Contains(where.data, []byte(base64.StdEncoding.EncodeToString([]byte(c)))) {
					t.Errorf("%s contain canary %q", where.name, c)
				}
			}
		}
		if bytes.Contains(logs.Bytes(), []byte(in.DeviceToken)) || bytes.Contains(logs.Bytes(), []byte(testserver.Password)) {
			t.Error("logs contain a credential")
		}
		if !strings.Contains(logs.String(), "handoff finished") {
			t.Errorf("the logs did not record the decision:\n%s", logs.String())
		}
		if !strings.Contains(all.String(), `"type":"handoff.decided"`) || !strings.Contains(all.String(), `"option":"approve"`) {
			t.Errorf("the decision is not in the log:\n%s", all.String())
		}
	})
}

// TestAuditAPI checks the witness endpoints end to end: the checkpoint verifies with the served key,
// and inclusion and consistency proofs check against it with tlog.
func TestAuditAPI(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, dialect string) {
		in := start(t, dialect, nil)
		ctx := ctxT(t)
		agent := in.Agent(t)
		for i := 0; i < 5; i++ {
			mustCreate(t, agent, basicRequest("audit api"))
		}
		get := func(path string, auth bool) (int, []byte) {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, in.URL+path, nil)
			if auth {
				req.Header.Set("Authorization", "Bearer "+in.DeviceToken)
			}
			resp, err := testhttp.Client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, b
		}
		code, body := get("/v1/audit/key", false)
		var keys struct{ Keys []string }
		if code != 200 || json.Unmarshal(body, &keys) != nil || len(keys.Keys) == 0 {
			t.Fatalf("key: %d %s", code, body)
		}
		if code, _ := get("/v1/audit/checkpoint", false); code != 401 {
			t.Fatalf("unauthenticated checkpoint: %d", code)
		}
		code, body = get("/v1/audit/checkpoint", true)
		if code != 200 {
			t.Fatalf("checkpoint: %d %s", code, body)
		}
		cp, err := audit.OpenCheckpoint(body, keys.Keys)
		if err != nil {
			t.Fatal(err)
		}
		if cp.Size != 6 || cp.Origin != "ony/orgs/"+in.OrgID { // device created + 5 handoffs
			t.Fatalf("checkpoint %+v", cp)
		}
		for i := int64(0); i < cp.Size; i++ {
			code, body = get("/v1/audit/proof/inclusion?index="+itoa(i)+"&size="+itoa(cp.Size), true)
			var p audit.Inclusion
			if code != 200 || json.Unmarshal(body, &p) != nil {
				t.Fatalf("inclusion %d: %d %s", i, code, body)
			}
			if err := tlog.CheckRecord(p.Proof, cp.Size, cp.Root, i, p.LeafHash); err != nil {
				t.Fatalf("inclusion %d does not check: %v", i, err)
			}
		}
		for o := int64(1); o <= cp.Size; o++ {
			code, body = get("/v1/audit/proof/consistency?old="+itoa(o)+"&new="+itoa(cp.Size), true)
			var p audit.Consistency
			if code != 200 || json.Unmarshal(body, &p) != nil {
				t.Fatalf("consistency %d: %d %s", o, code, body)
			}
			root, err := oldRoot(t, in, o)
			if err != nil {
				t.Fatal(err)
			}
			if err := tlog.CheckTree(p.Proof, cp.Size, cp.Root, o, root); err != nil {
				t.Fatalf("consistency %d→%d does not check: %v", o, cp.Size, err)
			}
		}
		if code, body := get("/v1/audit/proof/inclusion?index=99", true); code != 404 || !strings.Contains(string(body), "out_of_range") {
			t.Fatalf("out of range inclusion: %d %s", code, body)
		}
		if code, _ := get("/v1/audit/proof/consistency?old=0", true); code != 400 {
			t.Fatalf("bad consistency: %d", code)
		}
		if code, _ := get("/v1/audit/leaves", true); code != 403 {
			t.Fatalf("agent reading leaves: %d", code)
		}
	})
}

// oldRoot recomputes the root of the first n leaves from the stored leaves.
func oldRoot(t *testing.T, inst *testserver.Instance, n int64) (tlog.Hash, error) {
	t.Helper()
	var hashes []tlog.Hash
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = hashes[x]
		}
		return out, nil
	})
	if _, err := inst.App.Audit.Sequence(context.Background(), inst.App.Store, inst.OrgID); err != nil {
		t.Fatal(err)
	}
	err := inst.App.Store.InOrg(context.Background(), inst.OrgID, func(tx store.OrgTx) error {
		leaves, err := tx.AuditLeaves(context.Background(), 0, int(n))
		for i, l := range leaves {
			hs, err := tlog.StoredHashes(int64(i), l.Data, r)
			if err != nil {
				return err
			}
			hashes = append(hashes, hs...)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return tlog.TreeHash(n, r)
}

func itoa(i int64) string { return strconv.FormatInt(i, 10) }

// syncBuffer is a bytes.Buffer the server's goroutines can log into.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}
func (s *syncBuffer) String() string { return string(s.Bytes()) }

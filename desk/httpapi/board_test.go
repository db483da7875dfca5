package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/calldesk/desk/desk"
	"github.com/calldesk/desk/desk/httpapi"
	"github.com/calldesk/desk/desk/redisstore"
	"github.com/calldesk/desk/desk/redistest"
)

// The live board is in supervisors' and admins' snapshots only, and a board that
// cannot be read fails the snapshot (the hub then sends a degraded one).
func TestSnapshotBoard(t *testing.T) {
	rdb, prefix := redistest.Client(t)
	store := redisstore.New(rdb, redisstore.WithPrefix(prefix), redisstore.WithLogger(quiet()))
	t.Cleanup(func() { store.Close() })
	ctx := context.Background()
	if err := store.CreateUser(ctx, &desk.User{Login: "maria", Name: "Мария", Role: desk.RoleOperator}); err != nil {
		t.Fatal(err)
	}
	board := desk.NewBoard(store)
	snap := httpapi.SnapshotFunc(store, nil, httpapi.WithBoard(func(ctx context.Context) (any, error) { return board.State(ctx) }))
	tests := []struct {
		role      desk.Role
		wantBoard bool
	}{
		{desk.RoleSupervisor, true},
		{desk.RoleAdmin, true},
		{desk.RoleOperator, false},
	}
	for _, tt := range tests {
		p, err := snap(ctx, &desk.User{Login: "maria", Role: tt.role})
		if err != nil {
			t.Fatalf("%s: %v", tt.role, err)
		}
		raw, _ := json.Marshal(p)
		var doc struct {
			Board *struct {
				Operators []struct {
					Login string         `json:"login"`
					Today map[string]int `json:"today"`
				} `json:"operators"`
				Queue []any `json:"queue"`
			} `json:"board"`
		}
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		if (doc.Board != nil) != tt.wantBoard {
			t.Errorf("%s: board in snapshot = %v; want %v\n%s", tt.role, doc.Board != nil, tt.wantBoard, raw)
			continue
		}
		if tt.wantBoard && (len(doc.Board.Operators) != 1 || doc.Board.Operators[0].Login != "maria" || doc.Board.Queue == nil) {
			t.Errorf("%s: board = %s", tt.role, raw)
		}
	}

	failing := httpapi.SnapshotFunc(store, nil, httpapi.WithBoard(func(context.Context) (any, error) { return nil, desk.ErrUnavailable }))
	if _, err := failing(ctx, &desk.User{Login: "sveta", Role: desk.RoleSupervisor}); !errors.Is(err, desk.ErrUnavailable) {
		t.Errorf("snapshot with a failing board: err = %v; want ErrUnavailable", err)
	}
	if _, err := failing(ctx, &desk.User{Login: "maria", Role: desk.RoleOperator}); err != nil {
		t.Errorf("operator's snapshot read the board: %v", err)
	}
}

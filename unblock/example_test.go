package unblock_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/g0lab/g0efilter/dashboardapi"
	"github.com/g0lab/g0efilter/policy"
	"github.com/g0lab/g0efilter/unblock"
)

// requests stands in for the dashboard: one pending request, and the
// acknowledgements it gets.
type requests struct{ acks []dashboardapi.UnblockAck }

func (r *requests) PendingUnblocks(context.Context, string) ([]dashboardapi.UnblockRequest, error) {
	return []dashboardapi.UnblockRequest{{ID: "r1", Hostname: "web-1", Target: "api.example.com", Kind: dashboardapi.UnblockDomain}}, nil
}

func (r *requests) AckUnblocks(_ context.Context, acks []dashboardapi.UnblockAck) error {
	r.acks = append(r.acks, acks...)
	return nil
}

// A Poller adds what the dashboard asks for to the policy file, keeping
// its comments, and acknowledges it; the policy watcher then reloads it.
func ExamplePoller() {
	dir, err := os.MkdirTemp("", "unblock-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "policy.yaml")
	os.WriteFile(path, []byte("allowlist:\n  domains:\n    - \"github.com\"   # the code\n"), 0o644)

	src := &requests{}
	p := &unblock.Poller{Source: src, Hostname: "web-1", Policy: &policy.Editor{Path: path}}
	if err := p.Poll(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	data, _ := os.ReadFile(path)
	fmt.Print(string(data))
	fmt.Printf("%+v\n", src.acks)
	// Output:
	// allowlist:
	//   domains:
	//     - "github.com"   # the code
	//     - "api.example.com"
	// [{ID:r1 Applied:true Error:}]
}

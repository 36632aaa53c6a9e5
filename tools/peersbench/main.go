// peersbench: the load generator of `npm run bench:peers` (bench/peers.ts). One run measures
// one row for one system and prints one JSON line; bench/peers.ts starts the servers,
// interleaves the runs, reads each server's CPU and RSS from /proc and prints the table.
//
// Every side goes through its own client — leasehold over HTTP and its websocket watch,
// etcd through clientv3 (native gRPC) or its HTTP gateway, ZooKeeper through go-zookeeper —
// with the same number of sessions (-conns, each its own connection) and one request in
// flight per session.
//
//	peersbench -system leasehold|etcd|etcd-http|zk -row read|renew|renew-clusters|renew-stream|campaign|push|failover|leases
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/gorilla/websocket"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

var (
	system   = flag.String("system", "", "leasehold, etcd (gRPC), etcd-http (gateway) or zk")
	row      = flag.String("row", "", "read, renew, renew-clusters, renew-stream, campaign, push, failover, leases, hold")
	target   = flag.String("target", "", "leasehold base URL, etcd endpoint URL, or ZooKeeper host:port")
	conns    = flag.Int("conns", 50, "sessions, each its own connection, one request in flight each")
	duration = flag.Duration("duration", 3*time.Second, "measured time of a throughput row (after a warm-up of a third of it)")
	samples  = flag.Int("samples", 200, "samples of a latency row")
	ttl      = flag.Duration("ttl", 2*time.Second, "lease / session TTL of the failover row")
	count    = flag.Int("n", 10000, "leases of the leases row")
	prefix   = flag.String("prefix", "pb", "a name this run's keys, clusters and znodes start with")
)

// Result is what a run prints: ops and rate for throughput rows, latency percentiles in ms.
type Result struct {
	Ops int64 `json:"ops"`
	// TotalOps counts the warm-up too: what the server's CPU time of the whole run is divided by.
	TotalOps int64   `json:"totalOps"`
	Rps      float64 `json:"rps"`
	Errors   int64   `json:"errors"`
	P50      float64 `json:"p50Ms"`
	P99      float64 `json:"p99Ms"`
	Max      float64 `json:"maxMs"`
	N        int     `json:"n"`
	// Samples: each one of a failover run, in ms (a run has only a few).
	Samples []float64 `json:"samples,omitempty"`
}

func main() {
	flag.Parse()
	switch *row {
	case "read", "renew", "renew-clusters", "renew-stream":
		out(throughput())
	case "campaign":
		out(latencies(campaign()))
	case "push":
		out(latencies(push()))
	case "failover":
		ds := failover()
		r := latencies(ds)
		for _, d := range ds {
			r.Samples = append(r.Samples, ms(d))
		}
		out(r)
	case "leases":
		leases()
	case "hold":
		hold()
	default:
		die("unknown row %q", *row)
	}
}

func die(f string, a ...any) {
	fmt.Fprintf(os.Stderr, "peersbench %s %s: %s\n", *system, *row, fmt.Sprintf(f, a...))
	os.Exit(1)
}

func check(err error, what string) {
	if err != nil {
		die("%s: %v", what, err)
	}
}

func out(r Result) {
	b, _ := json.Marshal(r)
	fmt.Println(string(b))
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func latencies(ds []time.Duration) Result {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	pick := func(q float64) float64 { return ms(ds[min(len(ds)-1, int(q*float64(len(ds))))]) }
	return Result{N: len(ds), P50: pick(0.5), P99: pick(0.99), Max: ms(ds[len(ds)-1])}
}

// ---- throughput: -conns workers, each one op at a time, warm-up then a measured window ----

type op func() error

func throughput() Result {
	ops := make([]op, *conns)
	for i := range ops {
		ops[i] = makeOp(i)
	}
	var counting atomic.Bool
	var done atomic.Bool
	var n, errs, total atomic.Int64
	var wg sync.WaitGroup
	hists := make([][]time.Duration, len(ops))
	for i, o := range ops {
		wg.Add(1)
		go func(i int, o op) {
			defer wg.Done()
			for !done.Load() {
				t0 := time.Now()
				err := o()
				if err == nil {
					total.Add(1)
				}
				if !counting.Load() {
					continue
				}
				if err != nil {
					if errs.Add(1) == 1 {
						fmt.Fprintln(os.Stderr, "peersbench: first error:", err)
					}
					continue
				}
				n.Add(1)
				if len(hists[i]) < 100_000 {
					hists[i] = append(hists[i], time.Since(t0))
				}
			}
		}(i, o)
	}
	time.Sleep(*duration / 3)
	counting.Store(true)
	t0 := time.Now()
	time.Sleep(*duration)
	counting.Store(false)
	elapsed := time.Since(t0)
	done.Store(true)
	wg.Wait()
	var all []time.Duration
	for _, h := range hists {
		all = append(all, h...)
	}
	r := Result{Errors: errs.Load()}
	if len(all) > 0 {
		r = latencies(all)
		r.Errors = errs.Load()
	}
	r.Ops = n.Load()
	r.TotalOps = total.Load()
	r.Rps = float64(r.Ops) / elapsed.Seconds()
	return r
}

// makeOp sets up session i of a throughput row and answers its operation.
func makeOp(i int) op {
	switch *system + "/" + *row {
	case "leasehold/read":
		c := httpClient()
		path := "/v1/clusters/" + *prefix + "-read/leaders/dispatcher"
		if i == 0 {
			lhCampaign(c, *prefix+"-read", "dispatcher", "dispatcher-1", 300_000)
		}
		return func() error { _, err := httpDo(c, "GET", path, nil); return err }
	case "leasehold/renew", "leasehold/renew-clusters":
		c := httpClient()
		cluster := *prefix + "-renew"
		if *row == "renew-clusters" {
			cluster = fmt.Sprintf("%s-renew-%d", *prefix, i)
		}
		component := fmt.Sprintf("jobmanager/%032x", rand.Uint64())
		contender := fmt.Sprintf("jm-%d", i)
		sid := lhCampaign(c, cluster, component, contender, 300_000)
		body := []byte(fmt.Sprintf(`{"contenderId":%q,"sessionId":%q,"ttlMs":300000}`, contender, sid))
		path := "/v1/clusters/" + cluster + "/leaders/" + component + "/renew"
		return func() error { _, err := httpDo(c, "POST", path, body); return err }
	case "leasehold/renew-stream":
		// The renewal stream (GET /v1/renewals), one websocket per session, one renewal in
		// flight on it: etcd's LeaseKeepAlive shape, as the SDK renews.
		c := httpClient()
		cluster := *prefix + "-renew-stream"
		component := fmt.Sprintf("jobmanager/%032x", rand.Uint64())
		contender := fmt.Sprintf("jm-%d", i)
		sid := lhCampaign(c, cluster, component, contender, 300_000)
		ws, _, err := websocket.DefaultDialer.Dial(strings.Replace(*target, "http", "ws", 1)+"/v1/renewals", nil)
		check(err, "renewal stream")
		msg := []byte(fmt.Sprintf(`{"id":%d,"clusterId":%q,"component":%q,"contenderId":%q,"sessionId":%q,"ttlMs":300000}`, i, cluster, component, contender, sid))
		return func() error {
			if err := ws.WriteMessage(websocket.TextMessage, msg); err != nil {
				return err
			}
			_, b, err := ws.ReadMessage()
			if err == nil && bytes.Contains(b, []byte(`"error":`)) {
				err = fmt.Errorf("renewal refused: %s", b)
			}
			return err
		}

	case "etcd/read":
		cli := etcdClient()
		key := *prefix + "/read/dispatcher"
		if i == 0 {
			_, err := cli.Put(context.Background(), key, "akka.tcp://flink@10.0.0.1:6123/user/rpc/dispatcher_1")
			check(err, "put")
		}
		return func() error { _, err := cli.Get(context.Background(), key); return err }
	case "etcd/renew":
		// The native LeaseKeepAlive stream, one per session, one renewal in flight on it:
		// what clientv3's KeepAlive does, without its 1/3-TTL pacing.
		cli := etcdClient()
		lease, err := cli.Grant(context.Background(), 300)
		check(err, "grant")
		stream, err := pb.NewLeaseClient(cli.ActiveConnection()).LeaseKeepAlive(context.Background())
		check(err, "keepalive stream")
		req := &pb.LeaseKeepAliveRequest{ID: int64(lease.ID)}
		return func() error {
			if err := stream.Send(req); err != nil {
				return err
			}
			_, err := stream.Recv()
			return err
		}
	case "etcd-http/read":
		c := httpClient()
		key := base64.StdEncoding.EncodeToString([]byte(*prefix + "/read/dispatcher"))
		if i == 0 {
			val := base64.StdEncoding.EncodeToString([]byte("akka.tcp://flink@10.0.0.1:6123/user/rpc/dispatcher_1"))
			_, err := httpDo(c, "POST", "/v3/kv/put", []byte(fmt.Sprintf(`{"key":%q,"value":%q}`, key, val)))
			check(err, "put")
		}
		body := []byte(fmt.Sprintf(`{"key":%q}`, key))
		return func() error { _, err := httpDo(c, "POST", "/v3/kv/range", body); return err }
	case "etcd-http/renew":
		c := httpClient()
		b, err := httpDo(c, "POST", "/v3/lease/grant", []byte(`{"TTL":300}`))
		check(err, "grant")
		var g struct{ ID string }
		check(json.Unmarshal(b, &g), "grant answer")
		body := []byte(fmt.Sprintf(`{"ID":%s}`, g.ID))
		return func() error { _, err := httpDo(c, "POST", "/v3/lease/keepalive", body); return err }

	case "zk/read":
		conn := zkConn(10 * time.Second)
		path := "/" + *prefix + "-read"
		if i == 0 {
			_, err := conn.Create(path, []byte("akka.tcp://flink@10.0.0.1:6123/user/rpc/dispatcher_1"), 0, zk.WorldACL(zk.PermAll))
			if err != zk.ErrNodeExists {
				check(err, "create")
			}
		}
		return func() error { _, _, err := conn.Get(path); return err }
	case "zk/renew":
		// A ZooKeeper session is renewed by any request on it (the client pings only when
		// idle): exists on the session's own ephemeral znode.
		conn := zkConn(10 * time.Second)
		path := fmt.Sprintf("/%s-renew-%d", *prefix, i)
		_, err := conn.Create(path, nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll))
		check(err, "create")
		return func() error { _, _, err := conn.Exists(path); return err }
	}
	die("no such row for this system")
	return nil
}

// ---- HTTP (leasehold, etcd's gateway) ----

func httpClient() *http.Client {
	// One connection per session, like every other side's.
	return &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}, Timeout: 30 * time.Second}
}

func httpDo(c *http.Client, method, path string, body []byte) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, *target+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("content-type", "application/json")
	}
	res, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err == nil && res.StatusCode >= 300 {
		err = fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, b)
	}
	return b, err
}

type lhCampaignAnswer struct {
	Granted bool
	Leader  struct{ SessionID string }
}

func lhTryCampaign(c *http.Client, cluster, component, contender string, ttlMs int) (lhCampaignAnswer, error) {
	var a lhCampaignAnswer
	b, err := httpDo(c, "POST", "/v1/clusters/"+cluster+"/leaders/"+component+"/campaign",
		[]byte(fmt.Sprintf(`{"contenderId":%q,"ttlMs":%d,"address":"akka.tcp://flink@10.0.0.1:6123/user/rpc/%s"}`, contender, ttlMs, contender)))
	if err == nil {
		err = json.Unmarshal(b, &a)
	}
	return a, err
}

func lhCampaign(c *http.Client, cluster, component, contender string, ttlMs int) string {
	a, err := lhTryCampaign(c, cluster, component, contender, ttlMs)
	check(err, "campaign")
	if !a.Granted {
		die("campaign for %s/%s not granted", cluster, component)
	}
	return a.Leader.SessionID
}

func lhResign(c *http.Client, cluster, component, contender, sid string) {
	_, err := httpDo(c, "POST", "/v1/clusters/"+cluster+"/leaders/"+component+"/resign",
		[]byte(fmt.Sprintf(`{"contenderId":%q,"sessionId":%q}`, contender, sid)))
	check(err, "resign")
}

type lhChange struct {
	Type, Event, Component string
	Leader                 *struct{ ContenderID string }
}

// lhWatch opens a websocket watch of a cluster; its changes arrive on the channel.
func lhWatch(cluster string) <-chan lhChange {
	ws, _, err := websocket.DefaultDialer.Dial(strings.Replace(*target, "http", "ws", 1)+"/v1/clusters/"+cluster+"/watch", nil)
	check(err, "watch")
	_, _, err = ws.ReadMessage() // the snapshot: the watch is registered
	check(err, "watch snapshot")
	ch := make(chan lhChange, 1024)
	go func() {
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				close(ch)
				return
			}
			var m lhChange
			if json.Unmarshal(b, &m) == nil && m.Type == "change" {
				ch <- m
			}
		}
	}()
	return ch
}

// ---- etcd ----

func etcdClient() *clientv3.Client {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{*target}, DialTimeout: 5 * time.Second})
	check(err, "etcd client")
	return cli
}

func zkConn(timeout time.Duration) *zk.Conn {
	conn, events, err := zk.Connect([]string{*target}, timeout, zk.WithLogInfo(false))
	check(err, "zk connect")
	for e := range events {
		if e.State == zk.StateHasSession {
			break
		}
	}
	return conn
}

// ---- campaign: one contender, sequential campaigns for fresh components (each then given up, untimed) ----

func campaign() []time.Duration {
	var ds []time.Duration
	timed := func(i int, f func()) {
		t0 := time.Now()
		f()
		if i >= 10 { // warm-up
			ds = append(ds, time.Since(t0))
		}
	}
	switch *system {
	case "leasehold":
		c := httpClient()
		cluster := *prefix + "-campaign"
		for i := 0; i < *samples+10; i++ {
			component := fmt.Sprintf("jobmanager/%032x", rand.Uint64())
			var sid string
			timed(i, func() { sid = lhCampaign(c, cluster, component, "c-1", 10_000) })
			lhResign(c, cluster, component, "c-1", sid)
		}
	case "etcd":
		// A lease and the leader key created under it if absent: what a contender of
		// concurrency.Election does before it may lead.
		cli := etcdClient()
		ctx := context.Background()
		for i := 0; i < *samples+10; i++ {
			key := fmt.Sprintf("%s/campaign/%d", *prefix, i)
			var lease clientv3.LeaseID
			timed(i, func() {
				g, err := cli.Grant(ctx, 10)
				check(err, "grant")
				lease = g.ID
				r, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
					Then(clientv3.OpPut(key, "c-1", clientv3.WithLease(g.ID))).Commit()
				check(err, "txn")
				if !r.Succeeded {
					die("campaign not granted")
				}
			})
			_, err := cli.Revoke(ctx, lease)
			check(err, "revoke")
		}
	case "zk":
		// The session is the lease, made once; a campaign is the ephemeral leader znode.
		conn := zkConn(10 * time.Second)
		for i := 0; i < *samples+10; i++ {
			path := fmt.Sprintf("/%s-campaign-%d", *prefix, i)
			timed(i, func() {
				_, err := conn.Create(path, []byte("c-1"), zk.FlagEphemeral, zk.WorldACL(zk.PermAll))
				check(err, "create")
			})
			check(conn.Delete(path, -1), "delete")
		}
	default:
		die("no campaign row")
	}
	return ds
}

// ---- push: a writer's change until a watcher on another connection has it ----

func push() []time.Duration {
	var ds []time.Duration
	pause := func() { time.Sleep(time.Duration(2+rand.Intn(8)) * time.Millisecond) }
	record := func(i int, d time.Duration) {
		if i >= 10 {
			ds = append(ds, d)
		}
	}
	switch *system {
	case "leasehold":
		c := httpClient()
		cluster := *prefix + "-push"
		changes := lhWatch(cluster)
		for i := 0; i < *samples+10; i++ {
			component := "dispatcher"
			t0 := time.Now()
			sid := lhCampaign(c, cluster, component, "p-1", 60_000)
			for m := range changes {
				if m.Event == "granted" && m.Component == component {
					break
				}
			}
			record(i, time.Since(t0))
			pause()
			lhResign(c, cluster, component, "p-1", sid)
			for m := range changes {
				if m.Event == "revoked" && m.Component == component {
					break
				}
			}
			pause()
		}
	case "etcd":
		writer, watcher := etcdClient(), etcdClient()
		key := *prefix + "/push/dispatcher"
		ctx := context.Background()
		wch := watcher.Watch(ctx, key)
		time.Sleep(200 * time.Millisecond) // the watch is registered
		for i := 0; i < *samples+10; i++ {
			t0 := time.Now()
			_, err := writer.Put(ctx, key, "p-1")
			check(err, "put")
			<-wch
			record(i, time.Since(t0))
			pause()
			_, err = writer.Delete(ctx, key)
			check(err, "delete")
			<-wch
			pause()
		}
	case "zk":
		writer, watcher := zkConn(10*time.Second), zkConn(10*time.Second)
		path := "/" + *prefix + "-push"
		for i := 0; i < *samples+10; i++ {
			// ZooKeeper's watches fire once: armed again before each change.
			_, _, ev, err := watcher.ExistsW(path)
			check(err, "exists")
			t0 := time.Now()
			_, err = writer.Create(path, []byte("p-1"), zk.FlagEphemeral, zk.WorldACL(zk.PermAll))
			check(err, "create")
			<-ev
			record(i, time.Since(t0))
			pause()
			_, _, ev, err = watcher.ExistsW(path)
			check(err, "exists")
			check(writer.Delete(path, -1), "delete")
			<-ev
			pause()
		}
	default:
		die("no push row")
	}
	return ds
}

// ---- failover: a leader process (`-row hold`) killed with SIGKILL; the time until the
// standby of this process leads and a watcher (another connection) knows it ----

func failover() []time.Duration {
	var ds []time.Duration
	for i := 0; i < *samples; i++ {
		ds = append(ds, failoverOnce(fmt.Sprintf("%s-fo%d", *prefix, i)))
	}
	return ds
}

func failoverOnce(name string) time.Duration {
	self, _ := os.Executable()
	holder := exec.Command(self, "-system", *system, "-row", "hold", "-target", *target, "-ttl", ttl.String(), "-prefix", name)
	holder.Stderr = os.Stderr
	stdout, _ := holder.StdoutPipe()
	// The holder's stdin ends when this process does, however it ends: a holder never outlives it.
	stdin, _ := holder.StdinPipe()
	defer stdin.Close()
	check(holder.Start(), "holder")
	line := make([]byte, 6)
	if _, err := io.ReadFull(stdout, line); err != nil || string(line) != "leader" {
		die("holder did not lead: %v", err)
	}
	var knows <-chan time.Time // when the watcher learns the standby leads
	var standby func() time.Time
	switch *system {
	case "leasehold":
		c := httpClient()
		changes := lhWatch(name)
		ch := make(chan time.Time, 1)
		go func() {
			for m := range changes {
				if m.Event == "granted" && m.Leader != nil && m.Leader.ContenderID == "standby" {
					ch <- time.Now()
					return
				}
			}
		}()
		knows = ch
		ended := lhWatch(name) // the standby's own watch, as the SDK's contender keeps
		standby = func() time.Time {
			// As the SDK's contender: campaign, and again each time the watch says the lease ended.
			for {
				a, err := lhTryCampaign(c, name, "dispatcher", "standby", int(ttl.Milliseconds()))
				check(err, "campaign")
				if a.Granted {
					return time.Now()
				}
				for m := range ended {
					if m.Component == "dispatcher" && (m.Event == "expired" || m.Event == "revoked") {
						break
					}
				}
			}
		}
	case "etcd":
		cli, watcher := etcdClient(), etcdClient()
		sess, err := concurrency.NewSession(cli, concurrency.WithTTL(int(ttl.Seconds())))
		check(err, "session")
		el := concurrency.NewElection(sess, name)
		ch := make(chan time.Time, 1)
		observe := concurrency.NewElection(mustSession(watcher), name).Observe(context.Background())
		go func() {
			for r := range observe {
				if len(r.Kvs) > 0 && string(r.Kvs[0].Value) == "standby" {
					ch <- time.Now()
					return
				}
			}
		}()
		knows = ch
		standby = func() time.Time {
			check(el.Campaign(context.Background(), "standby"), "campaign")
			return time.Now()
		}
	case "zk":
		conn, watcher := zkConn(*ttl), zkConn(10*time.Second)
		dir := "/" + name
		mine, err := conn.Create(dir+"/n-", []byte("standby"), zk.FlagEphemeral|zk.FlagSequence, zk.WorldACL(zk.PermAll))
		check(err, "create")
		lowest := func(children []string) string {
			sort.Strings(children)
			if len(children) == 0 {
				return ""
			}
			return dir + "/" + children[0]
		}
		ch := make(chan time.Time, 1)
		go func() {
			for {
				children, _, ev, err := watcher.ChildrenW(dir)
				check(err, "children")
				if lowest(children) == mine {
					ch <- time.Now()
					return
				}
				<-ev
			}
		}()
		knows = ch
		standby = func() time.Time {
			for {
				children, _, err := conn.Children(dir)
				check(err, "children")
				sort.Strings(children)
				if lowest(children) == mine {
					return time.Now()
				}
				// Watch the one before, as ZooKeeper's election recipe does.
				prev := ""
				for _, c := range children {
					if dir+"/"+c < mine {
						prev = dir + "/" + c
					}
				}
				ok, _, ev, err := conn.ExistsW(prev)
				check(err, "exists")
				if ok {
					<-ev
				}
			}
		}
	default:
		die("no failover row")
	}
	led := make(chan time.Time, 1)
	go func() { led <- standby() }()
	time.Sleep(300 * time.Millisecond) // the holder renews at least once more
	t0 := time.Now()
	check(holder.Process.Signal(syscall.SIGKILL), "kill")
	holder.Wait()
	a, b := <-led, <-knows
	if b.After(a) {
		a = b
	}
	return a.Sub(t0)
}

func mustSession(cli *clientv3.Client) *concurrency.Session {
	s, err := concurrency.NewSession(cli, concurrency.WithTTL(60))
	check(err, "session")
	return s
}

// hold leads `-prefix` with TTL -ttl, renewing as its client does, until killed or its stdin
// ends; prints "leader".
func hold() {
	switch *system {
	case "leasehold":
		c := httpClient()
		sid := lhCampaign(c, *prefix, "dispatcher", "holder", int(ttl.Milliseconds()))
		fmt.Print("leader")
		body := []byte(fmt.Sprintf(`{"contenderId":"holder","sessionId":%q,"ttlMs":%d}`, sid, ttl.Milliseconds()))
		go func() {
			for {
				time.Sleep(*ttl / 3) // the SDK's pace
				httpDo(c, "POST", "/v1/clusters/"+*prefix+"/leaders/dispatcher/renew", body)
			}
		}()
	case "etcd":
		sess, err := concurrency.NewSession(etcdClient(), concurrency.WithTTL(int(ttl.Seconds())))
		check(err, "session")
		check(concurrency.NewElection(sess, *prefix).Campaign(context.Background(), "holder"), "campaign")
		fmt.Print("leader")
	case "zk":
		conn := zkConn(*ttl)
		dir := "/" + *prefix
		_, err := conn.Create(dir, nil, 0, zk.WorldACL(zk.PermAll))
		check(err, "create")
		_, err = conn.Create(dir+"/n-", []byte("holder"), zk.FlagEphemeral|zk.FlagSequence, zk.WorldACL(zk.PermAll))
		check(err, "create")
		fmt.Print("leader")
	}
	io.Copy(io.Discard, os.Stdin) // until the parent is gone
}

// ---- leases: -n leases created (and held, for ZooKeeper whose ephemeral znodes live with
// their sessions) until stdin closes; prints "ready" once they all exist ----

func leases() {
	var wg sync.WaitGroup
	per := *count / *conns
	for w := 0; w < *conns; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			switch *system {
			case "leasehold":
				c := httpClient()
				for i := 0; i < per; i++ {
					lhCampaign(c, *prefix+"-leases", fmt.Sprintf("jobmanager/%032x", rand.Uint64()), fmt.Sprintf("jm-%d-%d", w, i), 300_000) // the longest TTL leasehold grants
				}
			case "etcd":
				cli := etcdClient()
				for i := 0; i < per; i++ {
					g, err := cli.Grant(context.Background(), 3600)
					check(err, "grant")
					_, err = cli.Put(context.Background(), fmt.Sprintf("%s/leases/%d/%d", *prefix, w, i), "akka.tcp://flink@10.0.0.1:6123/user/rpc/jm", clientv3.WithLease(g.ID))
					check(err, "put")
				}
			case "zk":
				conn := zkConn(60 * time.Second)
				for i := 0; i < per; i++ {
					_, err := conn.Create(fmt.Sprintf("/%s-lease-%d-%d", *prefix, w, i), []byte("akka.tcp://flink@10.0.0.1:6123/user/rpc/jm"), zk.FlagEphemeral, zk.WorldACL(zk.PermAll))
					check(err, "create")
				}
			}
		}(w)
	}
	wg.Wait()
	fmt.Println("ready")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() { io.Copy(io.Discard, os.Stdin); sig <- syscall.SIGTERM }()
	<-sig
}
